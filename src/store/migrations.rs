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
        M::up(include_str!("../calllog/sql/003_cdr_search.sql")),
        M::up(include_str!("../calllog/sql/004_call_status.sql")),
        M::up(include_str!("../calllog/sql/005_retention_exports.sql")),
        M::up(include_str!("../confd/sql/001_core.sql")),
        M::up(include_str!("../confd/sql/002_lines_endpoints.sql")),
        M::up(include_str!("../confd/sql/003_users_voicemails.sql")),
        M::up(include_str!("../confd/sql/005_routing.sql")),
        M::up(include_str!("../confd/sql/006_user_lines.sql")),
        M::up(include_str!("../confd/sql/007_conferences.sql")),
        M::up(include_str!("../confd/sql/008_applications.sql")),
        M::up(include_str!("../confd/sql/009_parking.sql")),
        M::up(include_str!("../confd/sql/010_switchboards.sql")),
        M::up(include_str!("../chat/sql/001_chat.sql")),
        M::up(include_str!("../chat/sql/002_presence.sql")),
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

    /// 004 gives the call logs stored before it a `call_status`: answered when they were.
    #[test]
    fn call_status_of_earlier_logs() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        let m = super::migrations();
        m.to_version(&mut conn, 5).expect("up to 002_line_identity");
        conn.execute_batch(
            "INSERT INTO call_log (tenant_uuid, conversation_id, start_us, answer_us, call_direction, created_us)
             VALUES ('t', '1.1', 1, 2, 'internal', 0), ('t', '1.2', 1, NULL, 'internal', 0);",
        )
        .expect("insert");
        m.to_latest(&mut conn).expect("latest");
        let mut stmt = conn
            .prepare("SELECT call_status FROM call_log ORDER BY conversation_id")
            .expect("prepare");
        let status: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(status, vec!["answered", "unknown"]);
    }

    /// Call logs stored before the /cdr search indexes get their reversed extensions, search
    /// rows and tenant counts.
    #[test]
    fn cdr_search_indexes_cover_the_logs_stored_before() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        super::migrations()
            .to_version(&mut conn, 5)
            .expect("up to 002_line_identity");
        conn.execute_batch(
            "INSERT INTO call_log (tenant_uuid, conversation_id, start_us, call_direction, source_name,
                 source_exten, destination_exten, created_us)
             VALUES ('t1', '1.1', 1, 'internal', 'Élise', '1234', 'é1x', 0),
                    ('t1', '1.2', 2, 'internal', 'Bob', '', NULL, 0),
                    ('t2', '1.3', 3, 'inbound', 'Zoë', '0042', '99', 0);",
        )
        .expect("insert");
        super::migrations().to_latest(&mut conn).expect("latest");
        let rev: Vec<(String, Option<String>)> = conn
            .prepare("SELECT source_exten_rev, destination_exten_rev FROM call_log ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("rows");
        assert_eq!(
            rev,
            vec![
                ("4321".into(), Some("x1é".into())),
                (String::new(), None),
                ("2400".into(), Some("99".into()))
            ]
        );
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT tenant_uuid, logs FROM call_log_tenant_count ORDER BY tenant_uuid")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("rows");
        assert_eq!(counts, vec![("t1".into(), 2), ("t2".into(), 1)]);
        let found: Vec<i64> = conn
            .prepare(
                "SELECT rowid FROM call_log_search WHERE call_log_search MATCH '\"zoë\" OR \"élis\"' ORDER BY rowid",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("rows");
        assert_eq!(found, vec![1, 3]);
    }
}
