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
}
