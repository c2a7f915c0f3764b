//! First-start setup and start-up resync of the config-managed defaults.
//!
//! On an empty store: the master tenant, the default policies, the admin
//! group and the bootstrap admin (all-access policy). On every start: the
//! default policies' ACLs are rewritten from the code, as upstream's
//! `update_policy_on_startup` does, so an upgrade ships new default rights.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::model::{
    Purpose, DEFAULT_ADMIN_ACL, DEFAULT_ADMIN_GROUP, DEFAULT_ADMIN_POLICY, DEFAULT_MASTER_USER_POLICY,
    DEFAULT_USER_ACL, DEFAULT_USER_POLICY,
};
use crate::api::error::ApiError;
use crate::config::Config;
use crate::store::Store;

/// Name of the file holding a generated admin password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// What the first start created, for the log.
#[derive(Debug)]
pub struct Bootstrapped {
    pub master_tenant: Uuid,
    pub admin_user: Option<String>,
    pub password_file: Option<PathBuf>,
}

/// The installation uuid: from config, else stored, else generated and stored.
pub async fn installation_uuid(store: &Store, configured: Option<Uuid>) -> Result<Uuid, ApiError> {
    store
        .write(move |tx| {
            let stored: Option<String> = tx
                .query_row("SELECT value FROM accentd_meta WHERE key = 'uuid'", [], |r| r.get(0))
                .optional()?;
            let uuid = match (configured, stored.and_then(|s| Uuid::parse_str(&s).ok())) {
                (Some(c), _) => c,
                (None, Some(s)) => s,
                (None, None) => Uuid::new_v4(),
            };
            tx.execute(
                "INSERT INTO accentd_meta (key, value) VALUES ('uuid', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [uuid.to_string()],
            )?;
            Ok::<_, ApiError>(uuid)
        })
        .await
}

fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn write_secret_file(path: &Path, content: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")
}

/// Runs the first-start setup if the store has no tenant, then resyncs the
/// default policies.
pub async fn run(
    store: &Store,
    config: &Config,
    hasher: &super::password::Hasher,
) -> Result<Option<Bootstrapped>, ApiError> {
    let empty: bool = store
        .read(|c| Ok::<_, ApiError>(c.query_row("SELECT COUNT(*) = 0 FROM auth_tenant", [], |r| r.get(0))?))
        .await?;
    let result = if empty {
        let login = config.admin.user.clone().unwrap_or_else(|| "admin".to_string());
        let (password, password_file) = match &config.admin.password {
            Some(p) => (p.clone(), None),
            None => {
                let p = generate_password();
                let path = config.data_dir.join(ADMIN_PASSWORD_FILE);
                write_secret_file(&path, &p)
                    .map_err(|e| ApiError::Internal(format!("cannot write {}: {e}", path.display())))?;
                (p, Some(path))
            }
        };
        let hash = hasher.hash_async(password).await.map_err(ApiError::Internal)?;
        let login_for_tx = login.clone();
        let master = store
            .write(move |tx| {
                let master = Uuid::new_v4();
                let now = crate::time::now_epoch();
                tx.execute(
                    "INSERT INTO auth_tenant (uuid, name, slug, parent_uuid, created_at) VALUES (?1, 'master', 'master', ?1, ?2)",
                    params![master.to_string(), now],
                )?;
                sync_default_policies(tx, master)?;
                ensure_tenant_defaults(tx, master)?;
                let admin = Uuid::new_v4();
                tx.execute(
                    "INSERT INTO auth_user (uuid, username, password_hash, purpose, authentication_method, enabled, tenant_uuid, created_at)
                     VALUES (?1, ?2, ?3, ?4, 'native', 1, ?5, ?6)",
                    params![admin.to_string(), login_for_tx, hash, Purpose::Internal.as_str(), master.to_string(), now],
                )?;
                tx.execute(
                    "INSERT INTO auth_user_policy (user_uuid, policy_uuid)
                     SELECT ?1, uuid FROM auth_policy WHERE tenant_uuid = ?2 AND name = ?3",
                    params![admin.to_string(), master.to_string(), DEFAULT_MASTER_USER_POLICY],
                )?;
                Ok::<_, ApiError>(master)
            })
            .await?;
        if let Some(path) = &password_file {
            tracing::warn!(user = %login, file = %path.display(), "created the admin user; its generated password is in this file");
        } else {
            tracing::info!(user = %login, "created the admin user");
        }
        Some(Bootstrapped {
            master_tenant: master,
            admin_user: Some(login),
            password_file,
        })
    } else {
        None
    };
    store
        .write(|tx| {
            let master: String = tx.query_row(
                "SELECT uuid FROM auth_tenant WHERE uuid = parent_uuid LIMIT 1",
                [],
                |r| r.get(0),
            )?;
            let master = Uuid::parse_str(&master).map_err(|e| ApiError::Internal(e.to_string()))?;
            sync_default_policies(tx, master)
        })
        .await?;
    Ok(result)
}

/// The config-managed policies live in the master tenant, shared with every
/// sub-tenant; their ACLs are rewritten from the code at each start.
fn sync_default_policies(conn: &Connection, master: Uuid) -> Result<(), ApiError> {
    let defaults: [(&str, &str, Vec<&str>); 3] = [
        (
            DEFAULT_USER_POLICY,
            "Default rights of every PBX user",
            DEFAULT_USER_ACL.to_vec(),
        ),
        (
            DEFAULT_ADMIN_POLICY,
            "Default rights of a tenant administrator",
            DEFAULT_ADMIN_ACL.to_vec(),
        ),
        (
            DEFAULT_MASTER_USER_POLICY,
            "Everything, for the bootstrap administrator",
            vec!["#"],
        ),
    ];
    for (name, description, acl) in defaults {
        let existing: Option<String> = conn
            .query_row(
                "SELECT uuid FROM auth_policy WHERE tenant_uuid = ?1 AND name = ?2",
                params![master.to_string(), name],
                |r| r.get(0),
            )
            .optional()?;
        let uuid = match existing {
            Some(u) => u,
            None => {
                let u = Uuid::new_v4().to_string();
                conn.execute(
                    "INSERT INTO auth_policy (uuid, tenant_uuid, name, slug, description, config_managed, shared)
                     VALUES (?1, ?2, ?3, ?3, ?4, 1, 1)",
                    params![u, master.to_string(), name, description],
                )?;
                u
            }
        };
        conn.execute("DELETE FROM auth_policy_access WHERE policy_uuid = ?1", [&uuid])?;
        for (i, access) in acl.iter().enumerate() {
            conn.execute(
                "INSERT INTO auth_policy_access (policy_uuid, access, position) VALUES (?1, ?2, ?3)",
                params![uuid, access, i as i64],
            )?;
        }
    }
    Ok(())
}

/// Every tenant has a system-managed admin group bound to the default admin
/// policy. Called for the master tenant and for each tenant created.
pub fn ensure_tenant_defaults(conn: &Connection, tenant: Uuid) -> Result<(), ApiError> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM auth_group WHERE tenant_uuid = ?1 AND name = ?2)",
        params![tenant.to_string(), DEFAULT_ADMIN_GROUP],
        |r| r.get(0),
    )?;
    if exists {
        return Ok(());
    }
    let group = Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO auth_group (uuid, tenant_uuid, name, slug, system_managed) VALUES (?1, ?2, ?3, ?3, 1)",
        params![group, tenant.to_string(), DEFAULT_ADMIN_GROUP],
    )?;
    conn.execute(
        "INSERT INTO auth_group_policy (group_uuid, policy_uuid)
         SELECT ?1, uuid FROM auth_policy WHERE name = ?2 AND config_managed = 1",
        params![group, DEFAULT_ADMIN_POLICY],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password();
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate_password());
    }

    #[cfg(unix)]
    #[test]
    fn secret_file_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s");
        write_secret_file(&path, "x").expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
