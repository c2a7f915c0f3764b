//! `GET|PUT /retention`: how long a tenant keeps its call logs, recordings and exports, and
//! the daily purge that applies it.
//!
//! A tenant's `null` days mean the configuration's default (`call_logs.retention_days`,
//! `recording_retention_days`, `export_retention_days`; a default of 0 there keeps forever and
//! shows as `null`). A tenant's own value of 0 keeps nothing older than the purge, as upstream.

use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::cdr::model::Recording;
use super::media::{mark_deleted, remove_confined, FileError};
use super::CallLogService;
use crate::api::body::{limited_bytes, parse_json_object};
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::caller::{authenticated, Caller};
use crate::bus::EventSpec;
use crate::config::CallLogsConfig;

const DAY_US: i64 = 86_400 * 1_000_000;

/// A tenant's own settings (`None`: the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub cdr_days: Option<u32>,
    pub recording_days: Option<u32>,
    pub export_days: Option<u32>,
}

/// The defaults as the API shows them: `None` when the configuration keeps forever (0).
fn default_days(days: u32) -> Option<u32> {
    (days > 0).then_some(days)
}

impl Retention {
    pub fn to_json(&self, tenant: Uuid, config: &CallLogsConfig) -> Value {
        json!({
            "tenant_uuid": tenant,
            "cdr_days": self.cdr_days,
            "recording_days": self.recording_days,
            "export_days": self.export_days,
            "default_cdr_days": default_days(config.retention_days),
            "default_recording_days": default_days(config.recording_retention_days),
            "default_export_days": default_days(config.export_retention_days),
        })
    }
}

/// The `PUT` body. The read-only fields of `GET` are accepted (a client may send back what it
/// read) and ignored; anything else is refused. Missing keys become `null`, as upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    cdr_days: Option<Value>,
    #[serde(default)]
    recording_days: Option<Value>,
    #[serde(default)]
    export_days: Option<Value>,
    #[serde(default, rename = "tenant_uuid")]
    _tenant_uuid: Option<Value>,
    #[serde(default, rename = "default_cdr_days")]
    _default_cdr_days: Option<Value>,
    #[serde(default, rename = "default_recording_days")]
    _default_recording_days: Option<Value>,
    #[serde(default, rename = "default_export_days")]
    _default_export_days: Option<Value>,
}

fn days(field: &str, v: Option<Value>) -> Result<Option<u32>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(d) if d < 0 => Err(ApiError::invalid_field(field, "Must be greater than or equal to 0.")),
            Some(d) => u32::try_from(d)
                .map(Some)
                .map_err(|_| ApiError::invalid_field(field, "Must be less than or equal to 4294967295.")),
            None => Err(ApiError::invalid_field(field, "Not a valid integer.")),
        },
        Some(_) => Err(ApiError::invalid_field(field, "Not a valid integer.")),
    }
}

/// Validates a `PUT` body.
pub fn parse_body(bytes: &[u8]) -> Result<Retention, ApiError> {
    let body: Body = parse_json_object(bytes)?;
    let r = Retention {
        cdr_days: days("cdr_days", body.cdr_days)?,
        recording_days: days("recording_days", body.recording_days)?,
        export_days: days("export_days", body.export_days)?,
    };
    if let (Some(cdr), Some(rec)) = (r.cdr_days, r.recording_days) {
        if rec > cdr {
            return Err(ApiError::invalid_field(
                "recording_days",
                "\"recording_days\" must be lower than or equal to \"cdr_days\"",
            ));
        }
    }
    Ok(r)
}

// ---- store ----

pub fn find(conn: &Connection, tenant: Uuid) -> Result<Retention, ApiError> {
    let found = conn
        .query_row(
            "SELECT cdr_days, recording_days, export_days FROM call_log_retention WHERE tenant_uuid = ?1",
            [tenant.to_string()],
            |r| {
                Ok(Retention {
                    cdr_days: r.get(0)?,
                    recording_days: r.get(1)?,
                    export_days: r.get(2)?,
                })
            },
        )
        .optional()?;
    Ok(found.unwrap_or_default())
}

fn upsert(tx: &rusqlite::Transaction<'_>, tenant: Uuid, r: &Retention) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO call_log_retention (tenant_uuid, cdr_days, recording_days, export_days)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_uuid) DO UPDATE SET cdr_days = ?2, recording_days = ?3, export_days = ?4",
        params![tenant.to_string(), r.cdr_days, r.recording_days, r.export_days],
    )?;
    Ok(())
}

/// Every tenant's own settings.
pub fn all(conn: &Connection) -> Result<Vec<(Uuid, Retention)>, ApiError> {
    let mut stmt = conn.prepare("SELECT tenant_uuid, cdr_days, recording_days, export_days FROM call_log_retention")?;
    let rows = stmt
        .query_map([], |r| {
            let tenant: String = r.get(0)?;
            Ok((
                Uuid::parse_str(&tenant).unwrap_or_default(),
                Retention {
                    cdr_days: r.get(1)?,
                    recording_days: r.get(2)?,
                    export_days: r.get(3)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

// ---- the purge ----

/// Who a purge rule covers: one tenant (its own days), or every tenant without its own value
/// (the default days).
#[derive(Debug, Clone)]
enum Target {
    Tenant(Uuid),
    Others(Vec<Uuid>),
}

impl Target {
    /// A clause on `<alias>.tenant_uuid` and its one parameter (a JSON list for `Others`).
    fn clause(&self, alias: &str) -> (String, String) {
        match self {
            Target::Tenant(t) => (format!("{alias}.tenant_uuid = ?"), t.to_string()),
            Target::Others(except) => (
                format!("{alias}.tenant_uuid NOT IN (SELECT value FROM json_each(?))"),
                serde_json::to_string(&except.iter().map(Uuid::to_string).collect::<Vec<_>>())
                    .unwrap_or_else(|_| "[]".into()),
            ),
        }
    }
}

/// (target, cutoff in µs) for one kind: each tenant with its own days, then the default for
/// the rest (skipped when it keeps forever).
fn rules(
    own: &[(Uuid, Retention)],
    pick: impl Fn(&Retention) -> Option<u32>,
    default: u32,
    now_us: i64,
) -> Vec<(Target, i64)> {
    let cutoff = |d: u32| now_us.saturating_sub(i64::from(d).saturating_mul(DAY_US));
    let mut out: Vec<(Target, i64)> = own
        .iter()
        .filter_map(|(t, r)| pick(r).map(|d| (Target::Tenant(*t), cutoff(d))))
        .collect();
    if default > 0 {
        let except = own.iter().filter(|(_, r)| pick(r).is_some()).map(|(t, _)| *t).collect();
        out.push((Target::Others(except), cutoff(default)));
    }
    out
}

/// The recordings with a file of the target's calls started before `before_us`.
fn recordings_before(conn: &Connection, target: &Target, before_us: i64) -> Result<Vec<Recording>, ApiError> {
    let (clause, arg) = target.clause("c");
    let mut stmt = conn.prepare(&format!(
        "SELECT r.uuid, r.start_us, r.end_us, r.path, r.deleted FROM call_log_recording r
         JOIN call_log c ON c.id = r.call_log_id
         WHERE c.start_us < ? AND {clause} AND r.path IS NOT NULL AND r.deleted = 0"
    ))?;
    let rows = stmt
        .query_map(params![before_us, arg], |r| {
            let uuid: String = r.get(0)?;
            Ok(Recording {
                uuid: Uuid::parse_str(&uuid).unwrap_or_default(),
                start_us: r.get(1)?,
                end_us: r.get(2)?,
                path: r.get(3)?,
                deleted: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// What one purge did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeSummary {
    pub call_logs: usize,
    pub cels: usize,
    pub recordings: usize,
    pub exports: usize,
}

impl CallLogService {
    /// Deletes recording files (inside the recordings directory only; already gone is fine)
    /// and marks them deleted. A file that may not be deleted stays listed as it was.
    async fn purge_recording_files(&self, recordings: Vec<Recording>) -> Result<usize, ApiError> {
        let mut done = Vec::new();
        for rec in recordings {
            let Some(path) = rec.path.as_deref() else { continue };
            match remove_confined(&self.config.recordings_dir, path).await {
                Ok(()) => done.push(rec.uuid),
                Err(FileError::Outside) => {
                    tracing::warn!(recording = %rec.uuid, path, "retention: path outside the recordings directory, left alone")
                }
                Err(e) => {
                    tracing::error!(recording = %rec.uuid, path, error = ?e, "retention: recording file not deleted")
                }
            }
        }
        let n = done.len();
        if n > 0 {
            self.store.write(move |tx| mark_deleted(tx, &done)).await?;
        }
        Ok(n)
    }

    /// The recording files of every call started before `before_us` (all tenants), for
    /// `accentd call-logs delete`: the logs go, so their files must not stay behind.
    pub async fn purge_recordings_before(&self, before_us: i64) -> Result<usize, ApiError> {
        let target = Target::Others(Vec::new());
        let recordings = self
            .store
            .read(move |conn| recordings_before(conn, &target, before_us))
            .await?;
        self.purge_recording_files(recordings).await
    }

    /// The daily retention: for each tenant (its own days, else the configuration's), the
    /// recordings of old calls (files deleted, recordings marked deleted), then old call logs
    /// with their files and CELs, then old exports with their ZIP files. CELs older than the
    /// default `retention_days` go too (they belong to no tenant).
    pub async fn purge(&self, config: &CallLogsConfig, now_us: i64) -> Result<PurgeSummary, ApiError> {
        let own = self.store.read(all).await?;
        let mut summary = PurgeSummary::default();

        // Recording files: those of `recording_days`, and those of the calls about to go.
        let mut recording_rules = rules(&own, |r| r.recording_days, config.recording_retention_days, now_us);
        let cdr_rules = rules(&own, |r| r.cdr_days, config.retention_days, now_us);
        recording_rules.extend(cdr_rules.iter().cloned());
        for (target, before) in recording_rules {
            let recordings = self
                .store
                .read(move |conn| recordings_before(conn, &target, before))
                .await?;
            summary.recordings += self.purge_recording_files(recordings).await?;
        }

        for (target, before) in cdr_rules {
            let (logs, cels) = self
                .store
                .write(move |tx| {
                    let (clause, arg) = target.clause("call_log");
                    // The CELs of the calls purged (their conversation's linkedid).
                    let cels = tx.execute(
                        &format!(
                            "DELETE FROM cel WHERE linkedid IN (SELECT conversation_id FROM call_log
                             WHERE start_us < ? AND {clause})"
                        ),
                        params![before, arg],
                    )?;
                    let logs = tx.execute(
                        &format!("DELETE FROM call_log WHERE start_us < ? AND {clause}"),
                        params![before, arg],
                    )?;
                    Ok::<_, ApiError>((logs, cels))
                })
                .await?;
            summary.call_logs += logs;
            summary.cels += cels;
        }
        if config.retention_days > 0 {
            let cutoff =
                crate::cel::EventTime::from_micros(now_us.saturating_sub(i64::from(config.retention_days) * DAY_US));
            summary.cels += self
                .store
                .write(move |tx| Ok::<_, ApiError>(crate::cel::store::delete_before(tx, cutoff)?))
                .await?;
        }

        for (target, before) in rules(&own, |r| r.export_days, config.export_retention_days, now_us) {
            let exports = self
                .store
                .read(move |conn| match target {
                    Target::Tenant(t) => super::export::requested_before(conn, Some(t), &[], before),
                    Target::Others(except) => super::export::requested_before(conn, None, &except, before),
                })
                .await?;
            let mut gone = Vec::new();
            for e in exports {
                let removed = match e.path.as_deref() {
                    Some(path) => remove_confined(&self.exports_dir, path).await,
                    None => Ok(()),
                };
                match removed {
                    Ok(()) => gone.push(e.uuid),
                    Err(err) => tracing::error!(export = %e.uuid, error = ?err, "retention: export file not deleted"),
                }
            }
            summary.exports += self.store.write(move |tx| super::export::delete(tx, &gone)).await?;
        }
        Ok(summary)
    }
}

pub fn routes(svc: Arc<CallLogService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let limit = svc.auth.config.http.body_limit;

    let s = svc.clone();
    let get = warp::path!("retention")
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("call-logd.retention.read")?;
                let tenant = scope.tenant();
                let r = svc.store.read(move |conn| find(conn, tenant)).await?;
                Ok(warp::reply::json(&r.to_json(tenant, &svc.config)).into_response())
            })
        });

    let s = svc;
    let put = warp::path!("retention")
        .and(warp::put())
        .and(authed)
        .and(limited_bytes(limit))
        .then(move |caller: Caller, body: bytes::Bytes| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("call-logd.retention.update")?;
                let r = parse_body(&body)?;
                let tenant = scope.tenant();
                svc.store.write(move |tx| upsert(tx, tenant, &r)).await?;
                svc.bus.publish(
                    EventSpec::new(
                        "call_logd_retention_updated",
                        "call_logd.retention.updated",
                        r.to_json(tenant, &svc.config),
                    )
                    .tenant(tenant),
                );
                Ok(StatusCode::NO_CONTENT.into_response())
            })
        });

    get.or(put).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(
            parse_body(br#"{"cdr_days": 30, "recording_days": 7}"#).ok(),
            Some(Retention {
                cdr_days: Some(30),
                recording_days: Some(7),
                export_days: None
            })
        );
        // What GET shows may be sent back.
        assert!(parse_body(
            br#"{"tenant_uuid": "x", "cdr_days": null, "recording_days": null, "export_days": 1,
                "default_cdr_days": 1, "default_recording_days": null, "default_export_days": 2}"#
        )
        .is_ok());
        for (bad, field) in [
            (&br#"{"cdr_days": -1}"#[..], "cdr_days"),
            (br#"{"export_days": "3"}"#, "export_days"),
            (br#"{"recording_days": 1.5}"#, "recording_days"),
            (br#"{"cdr_days": 5, "recording_days": 6}"#, "recording_days"),
            (br#"{"cdr_days": 99999999999}"#, "cdr_days"),
            (br#"{"bogus": 1}"#, "bogus"),
            (b"[]", "_schema"),
            (b"", "_schema"),
        ] {
            let e = parse_body(bad).expect_err("bad");
            assert_eq!(e.status(), StatusCode::BAD_REQUEST);
            assert!(e.body()["details"].to_string().contains(field), "{}", e.body());
        }
    }

    #[test]
    fn rules_give_each_tenant_its_days_and_the_rest_the_default() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let own = vec![
            (
                a,
                Retention {
                    cdr_days: Some(1),
                    ..Retention::default()
                },
            ),
            (b, Retention::default()),
        ];
        let r = rules(&own, |r| r.cdr_days, 10, 100 * DAY_US);
        assert_eq!(r.len(), 2);
        assert!(matches!(&r[0], (Target::Tenant(t), c) if *t == a && *c == 99 * DAY_US));
        assert!(matches!(&r[1], (Target::Others(x), c) if x == &vec![a] && *c == 90 * DAY_US));
        assert_eq!(rules(&own, |r| r.cdr_days, 0, 100 * DAY_US).len(), 1, "default keeps");
    }
}
