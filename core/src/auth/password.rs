//! argon2id password hashes (PHC strings; parameters travel with the hash, so
//! they can be raised later without invalidating old hashes).

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use rand::RngCore;

/// Why a password could not be hashed (never for the password itself).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// (`password_hash`'s error is not a `std` error without its `std`
    /// feature: kept as a value, not a source.)
    #[error("argon2: {0}")]
    Argon2(argon2::password_hash::Error),
    #[error("hashing task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashing is deliberately slow: run it off the async threads.
pub async fn hash(password: String) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let salt = SaltString::encode_b64(&bytes).map_err(HashError::Argon2)?;
        Ok(Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(HashError::Argon2)?
            .to_string())
    })
    .await?
}

/// Verifies a password; with `None` (unknown account) it still spends the time
/// of one verification, so response timing does not tell which emails exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && stored != DUMMY_HASH
    })
    .await
    .unwrap_or(false)
}

/// argon2id hash of a random password nobody knows, with default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0n0mfb9mqz8MV6Zr2yGzAlqcSUyRCvdSRnz4JXcvP8E";

/// What we accept as a password: long enough, not trivially weak.
pub fn check_strength(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < 10 {
        return Err("must be at least 10 characters");
    }
    if len > 256 {
        return Err("must be at most 256 characters");
    }
    let distinct: std::collections::HashSet<char> = password.chars().collect();
    if distinct.len() < 5 {
        return Err("is too repetitive");
    }
    let lower = password.to_lowercase();
    if ["password", "1234567890", "qwertyuiop", "boxoffice"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Err("is too common");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_accounts_never_match() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(h.clone())).await);
        assert!(!verify("wrong horse battery".into(), Some(h)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("aaaaaaaaaaaa").is_err());
        assert!(check_strength("MyPassword99").is_err());
        assert!(check_strength("violet-otter-43-lamp").is_ok());
    }
}
