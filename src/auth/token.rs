//! Tokens as held in memory: validated on every request of every service, so
//! lookups never touch SQLite.
//!
//! The store and the cache are keyed by SHA-256 of the token, never by the
//! token itself: a leaked database or heap dump does not yield usable tokens,
//! and the lookup (a hash-map probe on a digest) reveals nothing about the
//! bytes of valid tokens, which is what a constant-time compare protects.

use std::sync::Arc;

use dashmap::DashMap;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::acl::AccessCheck;
use super::model::Purpose;

pub type TokenHash = [u8; 32];

pub fn hash_secret(secret: &str) -> TokenHash {
    Sha256::digest(secret.as_bytes()).into()
}

pub fn hex(hash: &TokenHash) -> String {
    use std::fmt::Write;
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn from_hex(text: &str) -> Option<TokenHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

/// A fresh random token: a v4 UUID (122 bits from the OS CSPRNG), the format
/// upstream clients expect.
pub fn new_secret() -> String {
    Uuid::new_v4().to_string()
}

#[derive(Debug)]
pub struct TokenData {
    pub hash: TokenHash,
    pub session_uuid: Uuid,
    /// The user's uuid as a string (upstream `auth_id`).
    pub auth_id: String,
    pub user_uuid: Uuid,
    pub pbx_user_uuid: Option<Uuid>,
    pub tenant_uuid: Uuid,
    pub purpose: Purpose,
    pub issued_at: f64,
    pub expire_at: f64,
    pub acl: Vec<String>,
    pub check: AccessCheck,
    pub metadata: Value,
    pub user_agent: String,
    pub remote_addr: String,
    pub refresh_token_uuid: Option<Uuid>,
    pub mobile: bool,
}

impl TokenData {
    pub fn is_expired(&self, now: f64) -> bool {
        now >= self.expire_at
    }

    /// Upstream's token object, with both the Accent and the Wazo key names.
    pub fn to_json(&self, token: &str, accent_uuid: Uuid) -> Value {
        let pbx = self.pbx_user_uuid.map(|u| u.to_string());
        json!({
            "token": token,
            "auth_id": self.auth_id,
            "accent_user_uuid": pbx,
            "xivo_user_uuid": pbx,
            "accent_uuid": accent_uuid.to_string(),
            "xivo_uuid": accent_uuid.to_string(),
            "issued_at": crate::time::local_naive(self.issued_at),
            "expires_at": crate::time::local_naive(self.expire_at),
            "utc_issued_at": crate::time::utc_naive(self.issued_at),
            "utc_expires_at": crate::time::utc_naive(self.expire_at),
            "acl": self.acl,
            "metadata": self.metadata,
            "session_uuid": self.session_uuid.to_string(),
            "remote_addr": self.remote_addr,
            "user_agent": self.user_agent,
        })
    }
}

/// token hash -> token, for every live token.
#[derive(Default)]
pub struct TokenCache {
    map: DashMap<TokenHash, Arc<TokenData>>,
}

impl TokenCache {
    pub fn insert(&self, token: Arc<TokenData>) {
        self.map.insert(token.hash, token);
    }

    /// The live token for `secret`, if any. Expired tokens are treated as
    /// absent (the purge task deletes them).
    pub fn get(&self, secret: &str, now: f64) -> Option<Arc<TokenData>> {
        let hash = hash_secret(secret);
        let token = self.map.get(&hash).map(|t| t.clone())?;
        (!token.is_expired(now)).then_some(token)
    }

    pub fn remove_session(&self, session: Uuid) {
        self.map.retain(|_, t| t.session_uuid != session);
    }

    pub fn remove_user(&self, user: Uuid) {
        self.map.retain(|_, t| t.user_uuid != user);
    }

    pub fn remove_tenant(&self, tenant: Uuid) {
        self.map.retain(|_, t| t.tenant_uuid != tenant);
    }

    pub fn remove_expired(&self, now: f64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, t| !t.is_expired(now));
        before - self.map.len()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = hash_secret("abc");
        assert_eq!(from_hex(&hex(&h)), Some(h));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn secrets_are_unique_uuids() {
        let a = new_secret();
        assert!(Uuid::parse_str(&a).is_ok());
        assert_ne!(a, new_secret());
    }
}
