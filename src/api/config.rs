//! `GET/PATCH /config` of each service: the running configuration (secrets
//! omitted) and the one runtime switch upstream supports, `/debug`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::error::ApiError;
use super::respond;
use crate::auth::caller::{authenticated, Caller};
use crate::auth::AuthService;
use crate::config::Config;

/// Applies a debug switch to the logging filter (installed by `main`).
pub type DebugHook = Arc<dyn Fn(bool) + Send + Sync>;

/// Process-wide runtime switches shared by every service's `/config`.
pub struct RuntimeConfig {
    debug: AtomicBool,
    hook: Option<DebugHook>,
}

impl RuntimeConfig {
    pub fn new(hook: Option<DebugHook>) -> Self {
        RuntimeConfig {
            debug: AtomicBool::new(false),
            hook,
        }
    }

    pub fn debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    pub fn set_debug(&self, on: bool) {
        self.debug.store(on, Ordering::Relaxed);
        if let Some(hook) = &self.hook {
            hook(on);
        }
        tracing::info!(debug = on, "debug logging switched");
    }

    fn view(&self, config: &Config) -> Value {
        let mut v = serde_json::to_value(config).unwrap_or(Value::Null);
        v["debug"] = json!(self.debug());
        v
    }
}

/// One JSON-Patch operation; only `replace /debug` is supported.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchOp {
    op: String,
    path: String,
    value: Option<Value>,
}

fn apply_patch(runtime: &RuntimeConfig, ops: Vec<PatchOp>) -> Result<(), ApiError> {
    // Validate everything first, so a bad list changes nothing.
    let mut debug = None;
    for (i, op) in ops.iter().enumerate() {
        match (op.op.as_str(), op.path.as_str(), &op.value) {
            ("replace", "/debug", Some(Value::Bool(b))) => debug = Some(*b),
            ("replace", "/debug", _) => {
                return Err(ApiError::invalid_field(&format!("{i}.value"), "Not a valid boolean."))
            }
            ("replace", path, _) => {
                return Err(ApiError::invalid_field(
                    &format!("{i}.path"),
                    format!("Cannot change {path}"),
                ))
            }
            (other, _, _) => {
                return Err(ApiError::invalid_field(
                    &format!("{i}.op"),
                    format!("Unsupported operation {other}"),
                ))
            }
        }
    }
    if let Some(b) = debug {
        runtime.set_debug(b);
    }
    Ok(())
}

/// `GET/PATCH <prefix>/config` guarded by `<service>.config.read/.update`.
pub fn routes(service: &'static str, auth: Arc<AuthService>, runtime: Arc<RuntimeConfig>) -> BoxedFilter<(Response,)> {
    let authed = authenticated(auth.clone());
    let limit = auth.config.http.body_limit;
    let (a, r) = (auth.clone(), runtime.clone());
    let get = warp::path!("config")
        .and(warp::get())
        .and(authed.clone())
        .then(move |caller: Caller| {
            let (auth, runtime) = (a.clone(), r.clone());
            respond(async move {
                caller.require(&format!("{service}.config.read"))?;
                Ok(warp::reply::json(&runtime.view(&auth.config)).into_response())
            })
        });
    let (a, r) = (auth, runtime);
    let patch = warp::path!("config")
        .and(warp::patch())
        .and(authed)
        .and(super::body::limited_bytes(limit))
        .then(move |caller: Caller, body: bytes::Bytes| {
            let (auth, runtime) = (a.clone(), r.clone());
            respond(async move {
                // ACL first: a caller without the right learns nothing about the body rules.
                caller.require(&format!("{service}.config.update"))?;
                let ops: Vec<PatchOp> = super::body::parse_json(&body)?;
                apply_patch(&runtime, ops)?;
                Ok(warp::reply::json(&runtime.view(&auth.config)).into_response())
            })
        });
    get.or(patch).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: &str, path: &str, value: Value) -> PatchOp {
        PatchOp {
            op: op.into(),
            path: path.into(),
            value: Some(value),
        }
    }

    #[test]
    fn only_debug_replace_is_accepted() {
        let seen = Arc::new(AtomicBool::new(false));
        let s = seen.clone();
        let rt = RuntimeConfig::new(Some(Arc::new(move |b| s.store(b, Ordering::Relaxed))));
        apply_patch(&rt, vec![op("replace", "/debug", json!(true))]).expect("ok");
        assert!(rt.debug());
        assert!(seen.load(Ordering::Relaxed));
        assert!(apply_patch(&rt, vec![op("replace", "/listen", json!("x"))]).is_err());
        assert!(apply_patch(&rt, vec![op("add", "/debug", json!(true))]).is_err());
        assert!(apply_patch(&rt, vec![op("replace", "/debug", json!("yes"))]).is_err());
        // A bad op anywhere in the list changes nothing.
        assert!(apply_patch(
            &rt,
            vec![op("replace", "/debug", json!(false)), op("remove", "/x", json!(1))]
        )
        .is_err());
        assert!(rt.debug());
    }
}
