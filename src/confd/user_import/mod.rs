//! Users CSV import and export (`POST /users/import`, `GET /users/export`), upstream's
//! format: one row per user with its auth credentials, line, SIP endpoint, extension,
//! voicemail and incall.
//!
//! The import is all or nothing: every row is parsed and checked first (all bad rows
//! reported at once), the auth passwords are hashed in parallel outside the
//! transaction, then every row is written in one transaction, the same way
//! `POST /users` writes one nested user. `PUT /users/import` (upstream's mass update)
//! is disabled upstream because it produced invalid configurations; it answers 405.

mod export;
mod import;
pub mod row;

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::{confd_error, respond};
use super::ConfdService;
use crate::api::body;
use crate::api::error::ApiError;
use crate::auth::caller::authenticated;
use crate::auth::caller::Caller;

/// An import may carry thousands of rows: its body limit is this, or the
/// configured one when larger.
const IMPORT_BODY_LIMIT: u64 = 32 * 1024 * 1024;

/// Rows reported at most when many are bad (the rest would only repeat).
const MAX_REPORTED_ROWS: usize = 100;

/// Why an import wrote nothing.
#[derive(Debug)]
pub enum ImportError {
    /// Bad rows or a bad file: upstream's 400 `{"errors": [...]}`, each naming its row.
    Rows(Vec<RowFailure>),
    /// Anything else (authentication, a store failure): the usual confd error.
    Api(ApiError),
}

/// One reported problem; `row` is `None` for the file as a whole.
#[derive(Debug)]
pub struct RowFailure {
    pub message: String,
    pub row: Option<(usize, Map<String, Value>)>,
}

impl RowFailure {
    fn of_api(number: usize, raw: Map<String, Value>, e: &ApiError) -> RowFailure {
        let message = match confd_error(e) {
            Some((_, messages)) => messages.join("; "),
            None => e.to_string(),
        };
        RowFailure {
            message,
            row: Some((number, raw)),
        }
    }
}

impl From<ApiError> for ImportError {
    fn from(e: ApiError) -> Self {
        ImportError::Api(e)
    }
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> Self {
        ImportError::Api(e.into())
    }
}

impl ImportError {
    fn into_response(self) -> Response {
        match self {
            ImportError::Api(e) => super::error::into_response(e),
            ImportError::Rows(failures) => {
                let timestamp = crate::time::now_epoch() as i64;
                let errors: Vec<Value> = failures
                    .into_iter()
                    .map(|f| {
                        let details = match f.row {
                            Some((number, row)) => json!({ "row_number": number, "row": row }),
                            None => json!({}),
                        };
                        json!({ "message": f.message, "timestamp": timestamp, "details": details })
                    })
                    .collect();
                warp::reply::with_status(warp::reply::json(&json!({ "errors": errors })), StatusCode::BAD_REQUEST)
                    .into_response()
            }
        }
    }
}

/// `POST /users/import`, `PUT /users/import` (405) and `GET /users/export`; mounted
/// before `/users/{id}` so `import`/`export` are not taken for ids.
pub fn routes(svc: Arc<ConfdService>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(svc.auth.clone());
    let limit = svc.body_limit.max(IMPORT_BODY_LIMIT);

    let s = svc.clone();
    let import = warp::path!("users" / "import")
        .and(warp::post())
        .and(authed.clone())
        .and(body::limited_bytes(limit))
        .then(move |caller: Caller, b: Bytes| {
            let svc = s.clone();
            async move {
                let result = async {
                    let scope = caller.require("confd.users.import.create")?;
                    svc.import_users(&scope, &b).await
                };
                match result.await {
                    Ok(created) => {
                        warp::reply::with_status(warp::reply::json(&created), StatusCode::CREATED).into_response()
                    }
                    Err(e) => e.into_response(),
                }
            }
        });

    let update = warp::path!("users" / "import")
        .and(warp::put())
        .and(authed.clone())
        .then(move |caller: Caller| async move {
            respond(async move {
                caller.require("confd.users.import.update")?;
                Err(ApiError::Custom {
                    status: StatusCode::METHOD_NOT_ALLOWED,
                    error_id: "method-not-allowed",
                    message: "Updating users by CSV is disabled: it creates invalid configurations".into(),
                    details: json!({}),
                })
            })
            .await
        });

    let s = svc;
    let export = warp::path!("users" / "export")
        .and(warp::get())
        .and(authed)
        .then(move |caller: Caller| {
            let svc = s.clone();
            respond(async move {
                let scope = caller.require("confd.users.export.read")?;
                let csv = svc.export_users(&scope).await?;
                Ok(warp::reply::with_header(csv, "content-type", "text/csv; charset=utf-8").into_response())
            })
        });

    import.or(update).unify().or(export).unify().boxed()
}
