//! Password hashing with argon2id (PHC strings), run off the async runtime.

use argon2::{Algorithm, Argon2, Params, Version};
use argon2::{PasswordHash, PasswordHasher, PasswordVerifier};

use crate::config::Argon2Config;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// A hash of a random password, verified against when the login is
    /// unknown so that "no such user" takes as long as "wrong password".
    dummy: String,
}

impl Hasher {
    pub fn new(config: &Argon2Config) -> Result<Self, String> {
        let params = Params::new(config.m_cost, config.t_cost, config.p_cost, None).map_err(|e| e.to_string())?;
        let mut hasher = Hasher {
            params,
            dummy: String::new(),
        };
        hasher.dummy = hasher.hash(&uuid::Uuid::new_v4().to_string())?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Blocking: call from `spawn_blocking` or the writer thread.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    }

    /// Blocking. Constant-time comparison is done by the argon2 crate. A
    /// `None` hash (unknown user, or no password set) still burns the same
    /// time and returns false.
    pub fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let (hash, real) = match hash {
            Some(h) => (h, true),
            None => (self.dummy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        // Verify with the parameters stored in the hash (they may predate a
        // config change), using our algorithm set.
        let ok = self.argon2().verify_password(password.as_bytes(), &parsed).is_ok();
        ok && real
    }

    /// Async wrappers that keep argon2 off tokio worker threads.
    pub async fn hash_async(&self, password: String) -> Result<String, String> {
        let h = self.clone();
        tokio::task::spawn_blocking(move || h.hash(&password))
            .await
            .map_err(|e| e.to_string())?
    }

    pub async fn verify_async(&self, password: String, hash: Option<String>) -> bool {
        let h = self.clone();
        tokio::task::spawn_blocking(move || h.verify(&password, hash.as_deref()))
            .await
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Hasher {
        Hasher::new(&Argon2Config {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        })
        .expect("params")
    }

    #[test]
    fn hash_is_argon2id_and_verifies() {
        let h = fast();
        let hash = h.hash("pw").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(h.verify("pw", Some(&hash)));
        assert!(!h.verify("wrong", Some(&hash)));
    }

    #[test]
    fn unknown_user_and_garbage_hash_never_verify() {
        let h = fast();
        assert!(!h.verify("anything", None));
        assert!(!h.verify("pw", Some("not a phc string")));
    }

    #[test]
    fn salts_differ() {
        let h = fast();
        assert_ne!(h.hash("pw").expect("a"), h.hash("pw").expect("b"));
    }
}
