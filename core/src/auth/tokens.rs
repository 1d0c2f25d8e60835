//! Opaque tokens: refresh tokens and the one-time tokens mailed to users.
//! Only SHA-256 hashes are stored, so a database leak yields no usable token.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The token mailed for a `user_tokens` row, derived from the row id with the
/// server secret. The email job recomputes it from the id, so the token itself
/// is never written anywhere (not in the queue, not in the email log).
pub fn email_token(secret: &[u8], purpose: &str, token_id: Uuid) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(b"boxoffice-email-token\0");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(token_id.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// How long an emailed unsubscribe link works.
pub const UNSUBSCRIBE_TTL_DAYS: i64 = 180;

/// Why an unsubscribe token is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnsubscribeError {
    #[error("the link is malformed or was not made by this server")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

/// The token of a one-click unsubscribe link (RFC 8058) for `address`,
/// good until `expires` (Unix seconds): `{address}.{expires}.{mac}`, the
/// address base64url-encoded, the MAC over both with the server secret. No
/// login and no stored state: the link itself proves the address's owner
/// received it.
pub fn unsubscribe_token(secret: &[u8], address: &str, expires: i64) -> String {
    let address = B64.encode(address.to_lowercase());
    let mac = unsubscribe_mac(secret, &address, expires);
    format!(
        "{address}.{expires}.{}",
        B64.encode(mac.finalize().into_bytes())
    )
}

/// The address an unsubscribe token names, if it is genuine and unexpired
/// at `now` (Unix seconds). The MAC is compared in constant time.
pub fn verify_unsubscribe(
    secret: &[u8],
    token: &str,
    now: i64,
) -> Result<String, UnsubscribeError> {
    let mut parts = token.split('.');
    let (Some(address), Some(expires), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(UnsubscribeError::Forged);
    };
    let expires: i64 = expires.parse().map_err(|_| UnsubscribeError::Forged)?;
    let mac = B64.decode(mac).map_err(|_| UnsubscribeError::Forged)?;
    unsubscribe_mac(secret, address, expires)
        .verify_slice(&mac)
        .map_err(|_| UnsubscribeError::Forged)?;
    if expires < now {
        return Err(UnsubscribeError::Expired);
    }
    let address = B64.decode(address).map_err(|_| UnsubscribeError::Forged)?;
    String::from_utf8(address).map_err(|_| UnsubscribeError::Forged)
}

fn unsubscribe_mac(secret: &[u8], encoded_address: &str, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(b"boxoffice-unsubscribe\0");
    mac.update(encoded_address.as_bytes());
    mac.update(b"\0");
    mac.update(expires.to_string().as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_tokens_are_stable_per_id_and_secret() {
        let id = Uuid::now_v7();
        assert_eq!(
            email_token(b"k", "verify_email", id),
            email_token(b"k", "verify_email", id)
        );
        assert_ne!(
            email_token(b"k", "verify_email", id),
            email_token(b"k", "reset_password", id)
        );
        assert_ne!(
            email_token(b"k", "verify_email", id),
            email_token(b"j", "verify_email", id)
        );
        assert_ne!(random_token(), random_token());
        assert_eq!(hash("a").len(), 32);
    }

    #[test]
    fn unsubscribe_tokens_name_their_address_until_they_expire() {
        let token = unsubscribe_token(b"k", "Ada@Example.com", 1_000);
        assert_eq!(
            verify_unsubscribe(b"k", &token, 999),
            Ok("ada@example.com".into())
        );
        assert_eq!(
            verify_unsubscribe(b"k", &token, 1_001),
            Err(UnsubscribeError::Expired)
        );
        assert_eq!(
            verify_unsubscribe(b"other", &token, 999),
            Err(UnsubscribeError::Forged)
        );
        // Another address or a later expiry under the same MAC.
        let (_, rest) = token.split_once('.').unwrap();
        let swapped = format!("{}.{rest}", B64.encode("eve@example.com"));
        assert_eq!(
            verify_unsubscribe(b"k", &swapped, 999),
            Err(UnsubscribeError::Forged)
        );
        let mac = token.rsplit('.').next().unwrap();
        let address = token.split('.').next().unwrap();
        let extended = format!("{address}.9999.{mac}");
        assert_eq!(
            verify_unsubscribe(b"k", &extended, 999),
            Err(UnsubscribeError::Forged)
        );
        for junk in ["", "a.b", "a.1.c.d", "a.x.c"] {
            assert_eq!(
                verify_unsubscribe(b"k", junk, 0),
                Err(UnsubscribeError::Forged)
            );
        }
    }
}
