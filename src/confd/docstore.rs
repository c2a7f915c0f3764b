//! The SQL every confd resource shares. A resource table holds an integer
//! `id`, a `uuid`, the `tenant_uuid` and the resource's writable fields as one
//! JSON document (`doc`); columns the database must index or keep unique are
//! generated from the document, so there is one source of truth and the
//! constraints still live in SQLite. Table and field names come from each
//! resource's static [`Def`](super::resource::Def), never from a request.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api::list::{contains_pattern, ListParams};

/// One stored resource.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub uuid: Uuid,
    pub tenant_uuid: Uuid,
    pub doc: Map<String, Value>,
}

impl Row {
    /// A document field as a string, if it is one.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.doc.get(key).and_then(Value::as_str)
    }
}

fn parse_uuid(s: &str, column: usize) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e)))
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let uuid: String = r.get(1)?;
    let tenant: String = r.get(2)?;
    let doc: String = r.get(3)?;
    let doc: Map<String, Value> = serde_json::from_str(&doc)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(Row {
        id: r.get(0)?,
        uuid: parse_uuid(&uuid, 1)?,
        tenant_uuid: parse_uuid(&tenant, 2)?,
        doc,
    })
}

/// How a path segment names a resource: its integer id or its uuid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Id(i64),
    Uuid(Uuid),
}

impl Key {
    /// `42` is an id, a uuid is a uuid, anything else names nothing.
    pub fn parse(s: &str) -> Option<Key> {
        if let Ok(id) = s.parse::<i64>() {
            return Some(Key::Id(id));
        }
        Uuid::parse_str(s).ok().map(Key::Uuid)
    }
}

pub fn get(c: &Connection, table: &str, key: Key) -> rusqlite::Result<Option<Row>> {
    match key {
        Key::Id(id) => c
            .query_row(
                &format!("SELECT id, uuid, tenant_uuid, doc FROM {table} WHERE id = ?1"),
                [id],
                row_from,
            )
            .optional(),
        Key::Uuid(uuid) => c
            .query_row(
                &format!("SELECT id, uuid, tenant_uuid, doc FROM {table} WHERE uuid = ?1"),
                [uuid.to_string()],
                row_from,
            )
            .optional(),
    }
}

/// Rows of `table` whose generated or real `column` equals `value`.
pub fn find_by(c: &Connection, table: &str, column: &str, value: &SqlValue) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT id, uuid, tenant_uuid, doc FROM {table} WHERE {column} = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([value], row_from)?;
    rows.collect()
}

/// The id of another row of `table` (not `id`) whose `column` is `value`:
/// uniqueness checks that name the field before the constraint fires.
pub fn taken(c: &Connection, table: &str, column: &str, value: &str, id: Option<i64>) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        &format!("SELECT id FROM {table} WHERE {column} = ?1 AND id IS NOT ?2"),
        params![value, id],
        |r| r.get(0),
    )
    .optional()
}

pub fn insert(
    c: &Connection,
    table: &str,
    uuid: Uuid,
    tenant: Uuid,
    doc: &Map<String, Value>,
) -> rusqlite::Result<i64> {
    c.execute(
        &format!("INSERT INTO {table} (uuid, tenant_uuid, doc) VALUES (?1, ?2, ?3)"),
        params![
            uuid.to_string(),
            tenant.to_string(),
            Value::Object(doc.clone()).to_string()
        ],
    )?;
    Ok(c.last_insert_rowid())
}

pub fn update(c: &Connection, table: &str, id: i64, doc: &Map<String, Value>) -> rusqlite::Result<()> {
    c.execute(
        &format!("UPDATE {table} SET doc = ?2 WHERE id = ?1"),
        params![id, Value::Object(doc.clone()).to_string()],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, table: &str, id: i64) -> rusqlite::Result<()> {
    c.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
    Ok(())
}

/// The SQL text of a document field, booleans as `true`/`false` so that
/// `?enabled=true` filters work like upstream's.
fn field_text(field: &str) -> String {
    format!(
        "(CASE json_type(doc, '$.{field}') WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
         ELSE CAST(json_extract(doc, '$.{field}') AS TEXT) END)"
    )
}

/// What a list may filter, search and sort on (static names only).
pub struct ListSpec<'a> {
    pub table: &'a str,
    pub searchable: &'a [&'a str],
    pub default_order: &'a str,
}

/// A page of rows in `tenants` (every tenant when `None`: shared resources)
/// plus the number of rows matching the filters (confd's `total`).
pub fn list(
    c: &Connection,
    spec: &ListSpec<'_>,
    tenants: Option<&[Uuid]>,
    params: &ListParams,
) -> rusqlite::Result<(u64, Vec<Row>)> {
    let mut sql_where = String::from(" WHERE tenant_uuid IN (");
    let mut args: Vec<SqlValue> = Vec::new();
    match tenants {
        None => sql_where = " WHERE 1".into(),
        Some([]) => sql_where = " WHERE 0".into(),
        Some(tenants) => {
            for (i, t) in tenants.iter().enumerate() {
                if i > 0 {
                    sql_where.push(',');
                }
                sql_where.push('?');
                args.push(SqlValue::Text(t.to_string()));
            }
            sql_where.push(')');
        }
    }
    for (field, value) in &params.filters {
        // Filter names were checked against the resource's allow-list.
        if field == "id" {
            sql_where.push_str(" AND CAST(id AS TEXT) = ?");
        } else if field == "uuid" {
            sql_where.push_str(" AND uuid = ?");
        } else {
            sql_where.push_str(&format!(" AND {} = ?", field_text(field)));
        }
        args.push(SqlValue::Text(value.clone()));
    }
    if let Some(term) = &params.search {
        if !spec.searchable.is_empty() {
            let pattern = contains_pattern(term);
            let ors: Vec<String> = spec
                .searchable
                .iter()
                .map(|f| format!("{} LIKE ? ESCAPE '\\'", field_text(f)))
                .collect();
            sql_where.push_str(&format!(" AND ({})", ors.join(" OR ")));
            for _ in spec.searchable {
                args.push(SqlValue::Text(pattern.clone()));
            }
        }
    }
    let table = spec.table;
    let total: i64 = c.query_row(
        &format!("SELECT COUNT(*) FROM {table}{sql_where}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = params.order.as_deref().unwrap_or(spec.default_order);
    let order_expr = match order {
        "id" => "id".to_string(),
        "uuid" => "uuid".to_string(),
        f => format!("{} COLLATE NOCASE", field_text(f)),
    };
    let sql = format!(
        "SELECT id, uuid, tenant_uuid, doc FROM {table}{sql_where} ORDER BY {order_expr} {}, id{}",
        params.direction.sql(),
        params.limit_sql()
    );
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), row_from)?;
    let rows: rusqlite::Result<Vec<Row>> = rows.collect();
    Ok((u64::try_from(total).unwrap_or(0), rows?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE,
             tenant_uuid TEXT NOT NULL, doc TEXT NOT NULL,
             name TEXT GENERATED ALWAYS AS (json_extract(doc, '$.name')) VIRTUAL);
             CREATE UNIQUE INDEX t_name ON t(name);",
        )
        .expect("schema");
        c
    }

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn crud_filter_search_order_and_tenants() {
        let c = conn();
        let (t1, t2) = (Uuid::new_v4(), Uuid::new_v4());
        for (name, enabled, tenant) in [("b_x", true, t1), ("A%y", false, t1), ("c", true, t2)] {
            insert(
                &c,
                "t",
                Uuid::new_v4(),
                tenant,
                &doc(serde_json::json!({"name": name, "enabled": enabled})),
            )
            .expect("insert");
        }
        // The generated column keeps names unique.
        assert!(insert(&c, "t", Uuid::new_v4(), t1, &doc(serde_json::json!({"name": "c"}))).is_err());
        let spec = ListSpec {
            table: "t",
            searchable: &["name"],
            default_order: "name",
        };
        let p = ListParams::parse("", &["name"], &["enabled"]).expect("params");
        let (total, rows) = list(&c, &spec, Some(&[t1]), &p).expect("list");
        assert_eq!(total, 2);
        // Case-insensitive order: "A%y" before "b_x".
        assert_eq!(rows[0].str("name"), Some("A%y"));
        let p = ListParams::parse("enabled=true", &["name"], &["enabled"]).expect("params");
        let (total, rows) = list(&c, &spec, Some(&[t1, t2]), &p).expect("list");
        assert_eq!((total, rows.len()), (2, 2));
        // LIKE wildcards in the term are literal.
        let p = ListParams::parse("search=%25", &["name"], &[]).expect("params");
        let (total, rows) = list(&c, &spec, Some(&[t1, t2]), &p).expect("list");
        assert_eq!(total, 1);
        assert_eq!(rows[0].str("name"), Some("A%y"));
        let p = ListParams::parse("limit=1&offset=1&direction=desc", &["name"], &[]).expect("params");
        let (total, rows) = list(&c, &spec, Some(&[t1, t2]), &p).expect("list");
        assert_eq!((total, rows.len()), (3, 1));
        assert_eq!(rows[0].str("name"), Some("b_x"));
        let first = rows[0].clone();
        let got = get(&c, "t", Key::Uuid(first.uuid)).expect("get").expect("found");
        assert_eq!(got.id, first.id);
        delete(&c, "t", first.id).expect("delete");
        assert!(get(&c, "t", Key::Id(first.id)).expect("get").is_none());
        assert_eq!(list(&c, &spec, Some(&[]), &ListParams::default()).expect("list").0, 0);
    }
}
