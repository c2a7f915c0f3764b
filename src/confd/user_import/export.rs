//! `GET /users/export`: every user of the tenant as one CSV row in the import's
//! format, so an export imports again (on another box, or after a wipe).
//!
//! What cannot travel: auth passwords (only their argon2 hashes are kept, so the
//! column stays empty), custom-endpoint lines (the format has no protocol for them;
//! their line columns stay empty) and anything past a user's main line, first
//! extension and first incall, as upstream.

use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;
use uuid::Uuid;

use super::row::export_columns;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::confd::docstore::{self, Key, Row};
use crate::confd::endpoints_sip::EndpointSip;
use crate::confd::lines::{self, EndpointKind};
use crate::confd::options;
use crate::confd::resource::from_map;
use crate::confd::users::{self, lines::lines_of_user, voicemail};
use crate::confd::{extensions, incalls, voicemails, ConfdService};

/// A stored value as a CSV cell: booleans as upstream's 0/1, nothing as empty.
fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => if *b { "1" } else { "0" }.into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => match n.as_f64() {
            // A ring time stored as 30.0 exports as 30.
            Some(f) if f.fract() == 0.0 && n.is_f64() => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// The cells of one user, column name -> value (absent = empty).
fn user_cells(c: &Connection, user: &Row) -> Result<Vec<(String, String)>, ApiError> {
    let mut out: Vec<(String, String)> = user.doc.iter().map(|(k, v)| (k.clone(), cell(Some(v)))).collect();
    out.push(("uuid".into(), user.uuid.to_string()));
    let mut set = |k: &str, v: String| out.push((k.to_owned(), v));

    if let Some(auth) = crate::auth::users::store::get(c, user.uuid)? {
        set("username", auth.fields.username.unwrap_or_default());
    }

    if let Some(line_id) = lines_of_user(c, user.id)?.first().copied() {
        if let Some(line) = docstore::get(c, lines::TABLE, Key::Id(line_id))? {
            let endpoint = lines::endpoint_of_line(c, line_id)?;
            let protocol = match endpoint {
                Some((EndpointKind::Sip, sip_id)) => {
                    let sip = docstore::get(c, crate::confd::endpoints_sip::TABLE, Key::Id(sip_id))?
                        .map(|r| from_map::<EndpointSip>(r.doc))
                        .transpose()?;
                    let sip = sip.ok_or_else(|| ApiError::Internal(format!("SIP endpoint {sip_id} not found")))?;
                    set(
                        "sip_username",
                        options::get(&sip.auth_section_options, "username")
                            .unwrap_or_default()
                            .into(),
                    );
                    set(
                        "sip_secret",
                        options::get(&sip.auth_section_options, "password")
                            .unwrap_or_default()
                            .into(),
                    );
                    let webrtc = options::get(&sip.endpoint_section_options, "webrtc") == Some("yes");
                    Some(if webrtc { "webrtc" } else { "sip" })
                }
                Some((EndpointKind::Sccp, _)) => Some("sccp"),
                Some((EndpointKind::Custom, _)) | None => None,
            };
            if let Some(p) = protocol {
                set("line_protocol", p.into());
                set("context", cell(line.doc.get("context")));
                if let Some(ext_id) = lines::main_extension(c, line_id)? {
                    if let Some(ext) = docstore::get(c, extensions::TABLE, Key::Id(ext_id))? {
                        set("exten", cell(ext.doc.get("exten")));
                    }
                }
            }
        }
    }

    if let Some(vm_id) = voicemail::of_user(c, user.id)? {
        if let Some(vm) = docstore::get(c, voicemails::TABLE, Key::Id(vm_id))? {
            for (k, v) in &vm.doc {
                set(&format!("voicemail_{k}"), cell(Some(v)));
            }
        }
    }

    let incall: Option<i64> = c
        .query_row(
            &format!(
                "SELECT id FROM {} WHERE destination_type = 'user' \
                 AND json_extract(doc, '$.destination.user_id') = ?1 ORDER BY id LIMIT 1",
                incalls::TABLE
            ),
            [user.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(incall_id) = incall {
        if let Some((_, exten, context)) = incalls::incall_extensions(c, incall_id)?.into_iter().next() {
            set("incall_exten", exten);
            set("incall_context", context);
            if let Some(row) = docstore::get(c, incalls::TABLE, Key::Id(incall_id))? {
                let ring = row.doc.get("destination").and_then(|d| d.get("ring_time"));
                set("incall_ring_seconds", cell(ring));
            }
        }
    }
    Ok(out)
}

/// The CSV of every user of `tenant`, ordered by id.
pub fn export(c: &Connection, tenant: Uuid) -> Result<String, ApiError> {
    let columns = export_columns();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&columns)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let users = docstore::find_by(c, users::TABLE, "tenant_uuid", &tenant.to_string().into())?;
    for user in &users {
        let cells = user_cells(c, user)?;
        let record = columns.iter().map(|col| {
            // The last value set for a column wins (computed cells come after the doc's).
            cells
                .iter()
                .rev()
                .find(|(k, _)| k == col)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        });
        w.write_record(record).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| ApiError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(e.to_string()))
}

impl ConfdService {
    pub async fn export_users(&self, scope: &Scope) -> Result<String, ApiError> {
        let tenant = scope.tenant();
        let csv = self.store.read(move |c| export(c, tenant)).await?;
        tracing::info!(tenant = %tenant, bytes = csv.len(), "users exported");
        Ok(csv)
    }
}
