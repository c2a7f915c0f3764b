//! `POST /faxes` and `POST /users/me/faxes`: the body is the document itself (PDF or
//! TIFF, told by its bytes rather than its Content-Type, which clients get wrong), the
//! parameters are in the query string.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::FaxQuery;
use crate::api::body::{limited_bytes, parse_query, raw_query};
use crate::api::error::ApiError;
use crate::api::respond;
use crate::auth::caller::{authenticated, Caller};
use crate::calld::CalldService;

pub fn routes(svc: Arc<CalldService>) -> BoxedFilter<(Response,)> {
    let limit = svc.faxes.max_bytes;
    let admin = warp::path!("faxes").map(|| false);
    let mine = warp::path!("users" / "me" / "faxes").map(|| true);
    admin
        .or(mine)
        .unify()
        .and(warp::post())
        .and(raw_query())
        .and(authenticated(svc.auth.clone()))
        .and(limited_bytes(limit))
        .then(move |me: bool, query: String, caller: Caller, body: bytes::Bytes| {
            let svc = svc.clone();
            respond(async move {
                let acl = if me {
                    "calld.users.me.faxes.create"
                } else {
                    "calld.faxes.create"
                };
                let scope = caller.require(acl)?;
                let query: FaxQuery = parse_query(&query)?;
                let user = if me {
                    if query.context.is_some() {
                        // The user's own context: not the client's to choose.
                        return Err(ApiError::invalid_field("context", "Unknown field."));
                    }
                    Some(caller.user_uuid())
                } else {
                    None
                };
                let fax = svc.send_fax(&scope, user, query, &body).await?;
                Ok(warp::reply::with_status(warp::reply::json(&fax), StatusCode::CREATED).into_response())
            })
        })
        .boxed()
}
