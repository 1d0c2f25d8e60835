//! Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).
//! The sandbox signs with it; the inbound endpoint verifies with it.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing webhook-id, webhook-timestamp or webhook-signature")]
    Missing,
    #[error("webhook-timestamp is not a unix time")]
    BadTimestamp,
    #[error("webhook-timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Why a webhook secret is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_")]
    Prefix,
    #[error("must be whsec_ followed by base64")]
    Base64,
    #[error("must hold at least 16 random bytes")]
    TooShort,
}

/// The HMAC key of a `whsec_<base64>` secret: the decoded bytes.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret.strip_prefix("whsec_").ok_or(SecretError::Prefix)?;
    let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
    if key.len() < 16 {
        return Err(SecretError::TooShort);
    }
    Ok(key)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The `webhook-signature` value for one secret.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", STANDARD.encode(mac(key, id, timestamp, body)))
}

/// Checks a delivery against every accepted key (rotation: old and new are
/// both valid for a while). Constant-time comparison; the timestamp must be
/// within `tolerance_secs` of `now` either way (replays and clock tricks).
pub fn verify(
    keys: &[Vec<u8>],
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
        return Err(SignatureError::Missing);
    };
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let offered: Vec<Vec<u8>> = signatures
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    let matched = keys.iter().any(|key| {
        let expected = mac(key, id, timestamp, body);
        offered
            .iter()
            .any(|sig| bool::from(sig.as_slice().ct_eq(&expected)))
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    #[test]
    fn matches_the_official_vector() {
        let key = decode_secret(SECRET).unwrap();
        assert_eq!(
            sign(&key, ID, TS, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn verifies_with_rotation_and_refuses_the_rest() {
        let key = decode_secret(SECRET).unwrap();
        let old = decode_secret("whsec_b2xkLXNlY3JldC1vbGQtc2VjcmV0LTEyMzQ1Ng==").unwrap();
        let sig = sign(&key, ID, TS, BODY);
        let check = |keys: &[Vec<u8>], sig: &str, body: &[u8], now: i64| {
            verify(
                keys,
                Some(ID),
                Some(&TS.to_string()),
                Some(sig),
                body,
                now,
                300,
            )
        };
        assert_eq!(check(&[old.clone(), key.clone()], &sig, BODY, TS), Ok(()));
        // Several signatures in the header: any may match.
        let both = format!("v1,AAAA {sig}");
        assert_eq!(
            check(std::slice::from_ref(&key), &both, BODY, TS + 299),
            Ok(())
        );
        assert_eq!(check(&[old], &sig, BODY, TS), Err(SignatureError::Mismatch));
        assert_eq!(
            check(std::slice::from_ref(&key), &sig, b"{\"test\": 1}", TS),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(std::slice::from_ref(&key), &sig, BODY, TS + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(std::slice::from_ref(&key), &sig, BODY, TS - 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(
                std::slice::from_ref(&key),
                Some(ID),
                Some("soon"),
                Some(&sig),
                BODY,
                TS,
                300
            ),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(&[key], None, Some("1"), Some(&sig), BODY, TS, 300),
            Err(SignatureError::Missing)
        );
        assert!(decode_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(decode_secret(crate::config::DEV_WEBHOOK_SECRET).is_ok());
    }
}
