//! Versioned schema migrations, applied at start (tracked in `user_version`).
//!
//! The list is append-only: each domain owns its SQL files next to its code
//! and adds new steps at the end, so a later service (confd, call-logd…)
//! extends the schema without editing auth's tables.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("sql/001_meta.sql")),
        M::up(include_str!("../auth/sql/001_auth.sql")),
        M::up(include_str!("../calllog/sql/001_call_log.sql")),
        M::up(include_str!("../cel/sql/001_cel.sql")),
        M::up(include_str!("../calllog/sql/002_line_identity.sql")),
        M::up(include_str!("../confd/sql/001_core.sql")),
        M::up(include_str!("../confd/sql/003_users_voicemails.sql")),
    ])
}

pub(super) fn apply(conn: &mut Connection) -> Result<(), rusqlite_migration::Error> {
    migrations().to_latest(conn)
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        assert!(super::migrations().validate().is_ok());
    }
}
