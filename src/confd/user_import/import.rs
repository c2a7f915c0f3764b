//! `POST /users/import`: rows → nested user plans → one transaction → events.

use std::time::Instant;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use serde_json::{json, Map, Value};

use super::row::{self, ImportRow, IncallPart, LineProtocol};
use super::{ImportError, RowFailure, MAX_REPORTED_ROWS};
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::confd::incalls;
use crate::confd::users::create::{plan_user, write_user, UserPlan, UserWrite};
use crate::confd::ConfdService;

/// Rows between two progress lines in the log.
const PROGRESS_EVERY: usize = 500;

/// A random SIP auth username: 8 lowercase letters, as upstream generates.
fn random_username() -> String {
    let mut rng = rand::rng();
    (0..8).map(|_| char::from(rng.random_range(b'a'..=b'z'))).collect()
}

/// A random SIP secret.
fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 16)
}

/// The nested `POST /users` body a row stands for (its incall apart: a user
/// body has none).
fn nested_body(row: &ImportRow) -> Map<String, Value> {
    let mut body = row.user.clone();
    if let Some(auth) = &row.auth {
        let mut a = json!({ "username": auth.username });
        if let Some(p) = &auth.password {
            a["password"] = json!(p);
        }
        body.insert("auth".into(), a);
    }
    if let Some(vm) = &row.voicemail {
        body.insert("voicemail".into(), Value::Object(vm.clone()));
    }
    if let Some(line) = &row.line {
        let mut l = json!({ "context": line.context });
        match line.protocol {
            LineProtocol::Sccp => l["endpoint_sccp"] = json!({}),
            LineProtocol::Sip | LineProtocol::Webrtc => {
                let username = line.sip_username.clone().unwrap_or_else(random_username);
                let secret = line.sip_secret.clone().unwrap_or_else(random_secret);
                let mut ep = json!({
                    "auth_section_options": [["username", username], ["password", secret]],
                });
                if line.protocol == LineProtocol::Webrtc {
                    // Asterisk's one switch for a browser client: DTLS, ICE, AVPF, rtcp-mux.
                    ep["endpoint_section_options"] = json!([["webrtc", "yes"]]);
                }
                l["endpoint_sip"] = ep;
            }
        }
        if let Some(ext) = &row.extension {
            l["extensions"] = json!([{ "exten": ext.exten, "context": ext.context }]);
        }
        body.insert("lines".into(), json!([l]));
    }
    body
}

/// A row ready to write.
struct Planned {
    number: usize,
    raw: Map<String, Value>,
    plan: UserPlan,
    incall: Option<IncallPart>,
}

/// What one row wrote.
struct Written {
    number: usize,
    user: UserWrite,
    incall: Option<(crate::confd::docstore::Row, crate::confd::docstore::Row)>,
}

impl ConfdService {
    /// Imports every row or none; answers upstream's `{"created": [...]}`.
    pub async fn import_users(&self, scope: &Scope, bytes: &[u8]) -> Result<Value, ImportError> {
        let started = Instant::now();
        let rows = row::parse(bytes).map_err(|(bad, e)| {
            ImportError::Rows(vec![RowFailure {
                message: e.to_string(),
                row: bad,
            }])
        })?;
        if rows.is_empty() {
            return Err(ImportError::Rows(vec![RowFailure {
                message: "the file has no user row".into(),
                row: None,
            }]));
        }
        let tenant = scope.tenant();
        let total = rows.len();

        let mut planned = Vec::with_capacity(total);
        let mut failures = Vec::new();
        for r in rows {
            match plan_user(tenant, nested_body(&r)) {
                Ok(plan) => planned.push(Planned {
                    number: r.number,
                    raw: r.raw,
                    plan,
                    incall: r.incall,
                }),
                Err(e) => {
                    if failures.len() < MAX_REPORTED_ROWS {
                        failures.push(RowFailure::of_api(r.number, r.raw, &e));
                    }
                }
            }
        }
        if !failures.is_empty() {
            return Err(ImportError::Rows(failures));
        }
        tracing::info!(rows = total, "user import: rows checked");

        // Argon2 is the slow part: hashed on the blocking pool, as many at a
        // time as there are cores (each hash takes its own memory).
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let hasher = self.auth.hasher.clone();
        let passwords: Vec<Option<String>> = planned.iter().map(|p| p.plan.password().map(str::to_owned)).collect();
        let hashes: Vec<Option<String>> = stream::iter(passwords)
            .map(|p| {
                let hasher = hasher.clone();
                async move {
                    match p {
                        Some(p) => hasher.hash_async(p).await.map(Some),
                        None => Ok(None),
                    }
                }
            })
            .buffered(workers)
            .try_collect()
            .await
            .map_err(ApiError::Internal)?;
        let hashed_in = started.elapsed();

        let written = self
            .store
            .write(move |tx| {
                let mut out = Vec::with_capacity(planned.len());
                for (i, (p, hash)) in planned.into_iter().zip(hashes).enumerate() {
                    let Planned {
                        number,
                        raw,
                        plan,
                        incall,
                    } = p;
                    let row_failed = |e: ApiError| ImportError::Rows(vec![RowFailure::of_api(number, raw.clone(), &e)]);
                    let user = write_user(tx, plan, hash).map_err(row_failed)?;
                    let incall = match &incall {
                        None => None,
                        Some(inc) => Some(
                            incalls::create_user_incall(
                                tx,
                                user.row.tenant_uuid,
                                user.row.id,
                                inc.ring_seconds.map(|s| s as f64),
                                &inc.exten,
                                &inc.context,
                            )
                            .map_err(|e| crate::confd::users::prefixed("incall", e))
                            .map_err(row_failed)?,
                        ),
                    };
                    out.push(Written { number, user, incall });
                    if (i + 1) % PROGRESS_EVERY == 0 {
                        tracing::info!(written = i + 1, rows = total, "user import: writing");
                    }
                }
                Ok::<_, ImportError>(out)
            })
            .await?;

        let mut created = Vec::with_capacity(written.len());
        for w in written {
            let (line_id, extension_id, sip_uuid) = match w.user.main_line() {
                Some((line, ext, sip)) => (Some(line.id), ext.map(|e| e.id), sip),
                None => (None, None, None),
            };
            let mut ids = json!({
                "row_number": w.number,
                "user_id": w.user.row.id,
                "user_uuid": w.user.row.uuid,
                "voicemail_id": w.user.voicemail.as_ref().map(|(vm, _)| vm.id),
                "line_id": line_id,
                "extension_id": extension_id,
                "sip_uuid": sip_uuid,
                "incall_extension_id": w.incall.as_ref().map(|(_, ext)| ext.id),
            });
            if let Some(o) = ids.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
            if let Some((incall, ext)) = &w.incall {
                self.announce_user_incall(incall, ext);
            }
            self.announce_user(w.user).await?;
            created.push(ids);
        }
        tracing::info!(
            users = created.len(),
            hashing_ms = hashed_in.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "user import: done"
        );
        Ok(json!({ "created": created }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str) -> Vec<ImportRow> {
        row::parse(csv.as_bytes()).expect("parses")
    }

    #[test]
    fn a_sip_row_becomes_a_nested_user_body() {
        let r = rows(
            "firstname,username,password,line_protocol,context,exten,sip_username,sip_secret,voicemail_name,voicemail_number,voicemail_context\n\
             Ann,ann,secret12,sip,default,1001,annsip,annpw,Ann,1001,default\n",
        );
        let body = nested_body(&r[0]);
        assert_eq!(body["firstname"], "Ann");
        assert_eq!(body["auth"], json!({"username": "ann", "password": "secret12"}));
        assert_eq!(body["voicemail"]["number"], "1001");
        let line = &body["lines"][0];
        assert_eq!(line["context"], "default");
        assert_eq!(
            line["endpoint_sip"]["auth_section_options"],
            json!([["username", "annsip"], ["password", "annpw"]])
        );
        assert!(line["endpoint_sip"].get("endpoint_section_options").is_none());
        assert_eq!(line["extensions"], json!([{"exten": "1001", "context": "default"}]));
    }

    #[test]
    fn missing_sip_credentials_are_generated_and_webrtc_is_switched_on() {
        let r = rows("firstname,line_protocol,context\nBob,webrtc,default\nCid,sip,default\n");
        let a = nested_body(&r[0]);
        let b = nested_body(&r[1]);
        let creds = |body: &Map<String, Value>| body["lines"][0]["endpoint_sip"]["auth_section_options"].clone();
        let (ca, cb) = (creds(&a), creds(&b));
        let user = ca[0][1].as_str().expect("username");
        assert_eq!(user.len(), 8);
        assert!(user.chars().all(|c| c.is_ascii_lowercase()));
        assert_eq!(ca[1][1].as_str().expect("secret").len(), 16);
        assert_ne!(ca, cb, "each line gets its own credentials");
        assert_eq!(
            a["lines"][0]["endpoint_sip"]["endpoint_section_options"],
            json!([["webrtc", "yes"]])
        );
        assert!(a["lines"][0].get("extensions").is_none());
    }

    #[test]
    fn an_sccp_row_and_a_bare_row() {
        let r = rows("firstname,line_protocol,context,exten\nDan,sccp,default,1002\nEve,,,\n");
        let a = nested_body(&r[0]);
        assert_eq!(a["lines"][0]["endpoint_sccp"], json!({}));
        let b = nested_body(&r[1]);
        assert_eq!(Value::Object(b), json!({"firstname": "Eve"}));
    }
}
