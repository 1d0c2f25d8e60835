//! Access tokens: compact JWS, HS256 only.
//!
//! A dozen lines over `hmac` + `sha2` instead of a JWT crate: we issue and accept
//! exactly one algorithm, so there is no `alg` negotiation to get wrong (the
//! header is compared byte for byte), and the crypto stays on the two crates
//! that the webhook signatures already use.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// `{"alg":"HS256","typ":"JWT"}`
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    pub role: String,
    /// The session (refresh-token family) this token was issued for.
    pub sid: Uuid,
    /// The user's token version; bumping it revokes every access token.
    pub ver: i32,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

pub fn encode(claims: &Claims, secret: &[u8]) -> String {
    let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signing_input = format!("{HEADER}.{payload}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(m.finalize().into_bytes()))
}

pub fn decode(token: &str, secret: &[u8], now: i64) -> Result<Claims, JwtError> {
    let mut parts = token.splitn(3, '.');
    let (Some(header), Some(payload), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    if header != HEADER {
        return Err(JwtError::Malformed);
    }
    let signature = B64.decode(signature).map_err(|_| JwtError::Malformed)?;
    let mut m = mac(secret);
    m.update(header.as_bytes());
    m.update(b".");
    m.update(payload.as_bytes());
    // verify_slice compares in constant time.
    m.verify_slice(&signature)
        .map_err(|_| JwtError::BadSignature)?;
    let claims: Claims =
        serde_json::from_slice(&B64.decode(payload).map_err(|_| JwtError::Malformed)?)
            .map_err(|_| JwtError::Malformed)?;
    if claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Uuid::nil(),
            role: "attendee".into(),
            sid: Uuid::nil(),
            ver: 0,
            iat: 0,
            exp,
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let token = encode(&claims(100), b"secret");
        assert_eq!(decode(&token, b"secret", 50).unwrap(), claims(100));
        assert_eq!(decode(&token, b"other", 50), Err(JwtError::BadSignature));
        assert_eq!(decode(&token, b"secret", 100), Err(JwtError::Expired));
        let (head, _) = token.rsplit_once('.').unwrap();
        let forged_payload = B64.encode(
            serde_json::to_vec(&Claims {
                role: "admin".into(),
                ..claims(100)
            })
            .unwrap(),
        );
        let forged = format!(
            "{HEADER}.{forged_payload}.{}",
            token.rsplit('.').next().unwrap()
        );
        assert_eq!(decode(&forged, b"secret", 50), Err(JwtError::BadSignature));
        assert_eq!(decode(head, b"secret", 50), Err(JwtError::Malformed));
        // alg=none and friends are refused before any crypto.
        let none = format!("eyJhbGciOiJub25lIn0.{forged_payload}.");
        assert_eq!(decode(&none, b"secret", 50), Err(JwtError::Malformed));
    }

    #[test]
    fn header_constant_is_what_it_claims() {
        assert_eq!(
            B64.decode(HEADER).unwrap(),
            br#"{"alg":"HS256","typ":"JWT"}"#
        );
    }
}
