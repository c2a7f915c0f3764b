//! Originate: `POST /calls` (admin, from any user of the tenant) and `POST /users/me/calls`
//! (from the caller's own lines, in the line's context). Asterisk first rings the user's
//! phone (ARI `POST /channels` on the line's endpoint); once it answers, the channel goes on
//! to the destination in the dialplan, like a call dialed from that phone.
//!
//! While it rings, the phone shows the destination (the connected line); the call keeps the
//! endpoint's own caller id, so the destination sees the user. With `all_lines` every line
//! rings through a Local channel (`accent-originate-all-lines` in accentd-dialplan.conf);
//! `from_mobile` rings the user's mobile number through the line's context. In both cases
//! the call id is the Local channel's, as upstream documents.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::CalldService;
use crate::api::error::ApiError;
use crate::ari::client::OriginateParams;
use crate::ari::error::AriError;
use crate::auth::caller::Scope;

/// The most variables one originate may set, and the longest value.
const MAX_VARIABLES: usize = 64;
const MAX_VALUE_LEN: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginateRequest {
    pub source: Source,
    pub destination: Destination,
    #[serde(default)]
    pub variables: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub user: String,
    pub line_id: Option<i64>,
    #[serde(default)]
    pub from_mobile: bool,
    #[serde(default)]
    pub all_lines: bool,
    #[serde(default)]
    pub auto_answer: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub extension: String,
    pub context: String,
    pub priority: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOriginateRequest {
    pub extension: String,
    pub line_id: Option<i64>,
    #[serde(default)]
    pub from_mobile: bool,
    #[serde(default)]
    pub all_lines: bool,
    #[serde(default)]
    pub auto_answer_caller: bool,
    #[serde(default)]
    pub variables: Map<String, Value>,
}

/// One line of the user: what rings it and its context.
#[derive(Debug, Clone)]
pub(super) struct UserLine {
    pub(super) id: i64,
    pub(super) context: String,
    /// `PJSIP/<name>` or a custom interface; `None` for what cannot be dialed (SCCP).
    pub(super) interface: Option<String>,
}

pub(super) struct Caller {
    pub(super) lines: Vec<UserLine>,
    pub(super) mobile: Option<String>,
}

pub(super) fn invalid(error_id: &'static str, message: &str, details: Value) -> ApiError {
    ApiError::Custom {
        status: warp::http::StatusCode::BAD_REQUEST,
        error_id,
        message: message.into(),
        details,
    }
}

/// An originate Asterisk refused (400 `error_id`, its reason kept), or could not take (503).
pub(super) fn originate_error(error_id: &'static str, endpoint: &str, e: AriError) -> ApiError {
    match e {
        AriError::BadRequest { message } => invalid(
            error_id,
            "Asterisk refused the call",
            json!({ "reason": message, "endpoint": endpoint }),
        ),
        e => super::actions::ari_error(endpoint, e),
    }
}

/// Dialplan text that cannot leave its argument (an extension, a context).
pub(super) fn check_dialplan_word(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 80
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*#+-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            field,
            "Must be 1 to 80 characters among letters, digits and * # + - _ . @",
        ))
    }
}

/// Caller-given channel variables: plain names only (a function name such as `FILE(...)`
/// would let a client write files on the PBX), string values without control characters.
pub(super) fn check_variables(vars: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    if vars.len() > MAX_VARIABLES {
        return Err(ApiError::invalid_field(
            "variables",
            format!("At most {MAX_VARIABLES} variables."),
        ));
    }
    let mut out = Map::new();
    for (name, value) in vars {
        let plain = name.trim_start_matches('_');
        let good_name = name.len() <= 80
            && name.len() - plain.len() <= 2
            && plain.starts_with(|c: char| c.is_ascii_alphabetic())
            && plain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !good_name {
            return Err(ApiError::invalid_field(
                "variables",
                format!("Invalid variable name {name:?}: letters, digits and _ only."),
            ));
        }
        let Some(text) = value.as_str() else {
            return Err(ApiError::invalid_field(
                "variables",
                format!("{name}: Not a valid string."),
            ));
        };
        if text.len() > MAX_VALUE_LEN || text.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                "variables",
                format!("{name}: at most {MAX_VALUE_LEN} characters, no control characters."),
            ));
        }
        out.insert(name.clone(), Value::String(text.to_owned()));
    }
    Ok(out)
}

/// Where the originate rings first, and what the call is then.
pub(super) struct Plan {
    pub(super) endpoint: String,
    pub(super) line_id: Option<i64>,
    pub(super) variables: Map<String, Value>,
}

impl CalldService {
    /// The user's lines (main first) and mobile number, if the user is in one of `tenants`.
    pub(super) async fn user_lines(&self, user: Uuid, tenants: Vec<Uuid>) -> Result<Option<Caller>, ApiError> {
        self.store
            .read(move |c| {
                let row: Option<(i64, String, Option<String>)> = c
                    .query_row(
                        "SELECT id, tenant_uuid, json_extract(doc, '$.mobile_phone_number') FROM confd_user WHERE uuid = ?1",
                        [user.to_string()],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })?;
                let Some((id, tenant, mobile)) = row else { return Ok(None) };
                if !Uuid::parse_str(&tenant).is_ok_and(|t| tenants.contains(&t)) {
                    return Ok(None);
                }
                let mut stmt = c.prepare(
                    "SELECT l.id, l.context, json_extract(s.doc, '$.name'), \
                            CASE WHEN json_extract(cu.doc, '$.enabled') = 0 THEN NULL ELSE json_extract(cu.doc, '$.interface') END \
                     FROM confd_user_line ul JOIN confd_line l ON l.id = ul.line_id \
                     LEFT JOIN confd_line_endpoint le ON le.line_id = l.id \
                     LEFT JOIN confd_endpoint_sip s ON s.id = le.sip_id \
                     LEFT JOIN confd_endpoint_custom cu ON cu.id = le.custom_id \
                     WHERE ul.user_id = ?1 ORDER BY ul.position, l.id",
                )?;
                let lines = stmt
                    .query_map([id], |r| {
                        let (id, context, sip, custom): (i64, Option<String>, Option<String>, Option<String>) =
                            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                        Ok(UserLine {
                            id,
                            context: context.unwrap_or_default(),
                            interface: sip.map(|n| format!("PJSIP/{n}")).or(custom),
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok::<_, ApiError>(Some(Caller {
                    lines,
                    mobile: mobile.filter(|m| !m.trim().is_empty()),
                }))
            })
            .await
    }

    /// Which endpoint rings first for `user`, as the request's source options say.
    pub(super) fn plan(
        user: Uuid,
        caller: &Caller,
        line_id: Option<i64>,
        all_lines: bool,
        from_mobile: bool,
        auto_answer: bool,
    ) -> Result<(Plan, UserLine), ApiError> {
        let user_details = json!({ "user_uuid": user });
        let main = caller
            .lines
            .first()
            .cloned()
            .ok_or_else(|| invalid("user-missing-main-line", "User has no main line", user_details.clone()))?;
        let line = match line_id {
            Some(id) => caller.lines.iter().find(|l| l.id == id).cloned().ok_or_else(|| {
                invalid(
                    "invalid-user-line",
                    "User has no such line",
                    json!({ "user_uuid": user, "line_id": id }),
                )
            })?,
            None => main,
        };
        let mut variables = Map::new();
        variables.insert("ACCENT_USERUUID".into(), Value::String(user.to_string()));
        let endpoint = if from_mobile {
            let mobile = caller.mobile.as_deref().ok_or_else(|| {
                invalid(
                    "user-missing-mobile",
                    "User has no mobile phone number",
                    user_details.clone(),
                )
            })?;
            check_dialplan_word("mobile_phone_number", mobile)?;
            check_dialplan_word("context", &line.context)?;
            format!("Local/{mobile}@{}", line.context)
        } else if all_lines && line_id.is_none() && caller.lines.len() > 1 {
            let all: Vec<&str> = caller.lines.iter().filter_map(|l| l.interface.as_deref()).collect();
            if all.is_empty() {
                return Err(invalid(
                    "user-missing-main-line",
                    "User has no line to call from",
                    user_details,
                ));
            }
            variables.insert("__ACCENT_ORIGINATE_INTERFACES".into(), Value::String(all.join("&")));
            "Local/s@accent-originate-all-lines".to_string()
        } else {
            let interface = line.interface.clone().ok_or_else(|| {
                invalid(
                    "invalid-user-line",
                    "The line cannot be called (no SIP or custom endpoint)",
                    json!({ "user_uuid": user, "line_id": line.id }),
                )
            })?;
            if auto_answer && interface.starts_with("PJSIP/") {
                // BroadSoft's auto-answer, which SIP phones obey for a call they did not expect.
                variables.insert(
                    "PJSIP_HEADER(add,Call-Info)".into(),
                    Value::String("<sip:accentd>;answer-after=0".into()),
                );
            }
            interface
        };
        let line_id = (!from_mobile).then_some(line.id);
        Ok((
            Plan {
                endpoint,
                line_id,
                variables,
            },
            line,
        ))
    }

    async fn originate_plan(
        &self,
        user: Uuid,
        plan: Plan,
        extra: Map<String, Value>,
        dest: Destination,
    ) -> Result<Value, ApiError> {
        let ari = self.ari_link()?;
        let mut variables = extra;
        // The phone shows whom it will call while it rings.
        variables.insert("CONNECTEDLINE(name)".into(), Value::String(dest.extension.clone()));
        variables.insert("CONNECTEDLINE(num)".into(), Value::String(dest.extension.clone()));
        variables.extend(plan.variables);
        let params = OriginateParams {
            endpoint: plan.endpoint.clone(),
            extension: Some(dest.extension.clone()),
            context: Some(dest.context.clone()),
            priority: Some(dest.priority),
            variables: Some(variables),
            ..OriginateParams::default()
        };
        let ch = ari
            .originate(&params)
            .await
            .map_err(|e| originate_error("call-creation-failed", &plan.endpoint, e))?;
        tracing::info!(call_id = %ch.id, user = %user, endpoint = %plan.endpoint, "call originated");
        Ok(json!({
            "call_id": ch.id,
            "user_uuid": user,
            "line_id": plan.line_id,
            "status": ch.state.as_str(),
            "creation_time": ch.created_at().and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "dialed_extension": dest.extension,
            "is_caller": true,
        }))
    }

    /// What rings every line of `user` (one in `tenants`) for a call calld places to the
    /// user: the endpoint and the variables naming the user. 400 for an unknown user or
    /// one without a line to ring.
    pub(super) async fn user_endpoint(
        &self,
        user: Uuid,
        tenants: Vec<Uuid>,
        auto_answer: bool,
    ) -> Result<(String, Map<String, Value>), ApiError> {
        let caller = self
            .user_lines(user, tenants)
            .await?
            .ok_or_else(|| invalid("invalid-user", "Invalid user: not found", json!({ "user_uuid": user })))?;
        let (plan, _) = Self::plan(user, &caller, None, true, false, auto_answer)?;
        Ok((plan.endpoint, plan.variables))
    }

    /// The context of `user`'s main line (the user in one of `tenants`): where the user's
    /// own dialing happens. 400 for an unknown user or one without a line.
    pub(super) async fn user_context(&self, user: Uuid, tenants: Vec<Uuid>) -> Result<String, ApiError> {
        let caller = self
            .user_lines(user, tenants)
            .await?
            .ok_or_else(|| invalid("invalid-user", "Invalid user: not found", json!({ "user_uuid": user })))?;
        let main = caller.lines.first().ok_or_else(|| {
            invalid(
                "user-missing-main-line",
                "User has no main line",
                json!({ "user_uuid": user }),
            )
        })?;
        check_dialplan_word("context", &main.context)?;
        Ok(main.context.clone())
    }

    /// `POST /calls`.
    pub async fn originate(&self, scope: &Scope, req: OriginateRequest) -> Result<Value, ApiError> {
        let user = Uuid::parse_str(&req.source.user)
            .map_err(|_| ApiError::invalid_field("source.user", "Not a valid UUID."))?;
        check_dialplan_word("destination.extension", &req.destination.extension)?;
        check_dialplan_word("destination.context", &req.destination.context)?;
        if req.destination.priority < 1 {
            return Err(ApiError::invalid_field("destination.priority", "Must be at least 1."));
        }
        let extra = check_variables(&req.variables)?;
        let caller = self
            .user_lines(user, scope.tenants(false))
            .await?
            .ok_or_else(|| invalid("invalid-user", "Invalid user: not found", json!({ "user_uuid": user })))?;
        let s = &req.source;
        let (plan, _) = Self::plan(user, &caller, s.line_id, s.all_lines, s.from_mobile, s.auto_answer)?;
        self.originate_plan(user, plan, extra, req.destination).await
    }

    /// `POST /users/me/calls`: to `extension` in the calling line's context.
    pub async fn originate_mine(
        &self,
        scope: &Scope,
        user: Uuid,
        req: UserOriginateRequest,
    ) -> Result<Value, ApiError> {
        check_dialplan_word("extension", &req.extension)?;
        let extra = check_variables(&req.variables)?;
        let caller = self
            .user_lines(user, scope.tenants(false))
            .await?
            .ok_or_else(|| invalid("invalid-user", "Invalid user: not found", json!({ "user_uuid": user })))?;
        let (plan, line) = Self::plan(
            user,
            &caller,
            req.line_id,
            req.all_lines,
            req.from_mobile,
            req.auto_answer_caller,
        )?;
        check_dialplan_word("context", &line.context)?;
        let dest = Destination {
            extension: req.extension,
            context: line.context,
            priority: 1,
        };
        self.originate_plan(user, plan, extra, dest).await
    }
}
