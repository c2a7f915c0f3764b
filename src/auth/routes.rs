//! The auth API's route tree, mounted under `/api/auth/0.1`.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::AuthService;

pub fn routes(auth: Arc<AuthService>) -> BoxedFilter<(Response,)> {
    let backends = warp::path!("backends")
        .and(warp::get())
        .map(|| warp::reply::json(&serde_json::json!({ "data": ["accent_user", "wazo_user"] })).into_response());
    let spec = warp::path!("api" / "api.yml").and(warp::get()).map(|| {
        warp::reply::with_header(crate::api::openapi::AUTH_SPEC, "content-type", "application/x-yaml").into_response()
    });

    let tree = super::tokens::routes(auth.clone())
        .or(super::tenants::routes(auth.clone()))
        .unify()
        .or(super::policies::routes(auth.clone()))
        .unify()
        .or(super::groups::routes(auth.clone()))
        .unify()
        .or(super::users::routes(auth.clone()))
        .unify()
        .or(backends)
        .unify()
        .or(spec)
        .unify();
    warp::path("api")
        .and(warp::path("auth"))
        .and(warp::path("0.1"))
        .and(tree)
        .boxed()
}
