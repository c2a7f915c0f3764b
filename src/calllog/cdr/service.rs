//! Reading call logs for the API, and storing the ones the generator builds.

use uuid::Uuid;

use super::model::{CallLog, CdrPage, CdrQuery, Visibility};
use super::store;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::calllog::CallLogService;

impl CallLogService {
    /// `/cdr`: the call logs of the caller's tenant (and sub-tenants with `recurse`).
    pub async fn list_cdr(&self, scope: &Scope, q: CdrQuery, user: Option<Uuid>) -> Result<CdrPage, ApiError> {
        // A user's own history spans every tenant the token sees; the user filter narrows it.
        let recurse = q.recurse || user.is_some();
        let vis = Visibility {
            tenants: scope.tenants(recurse),
            user,
        };
        let (items, total, filtered) = self.store.read(move |conn| store::search(conn, &vis, &q)).await?;
        Ok(CdrPage { items, total, filtered })
    }

    /// `/cdr/{id}`: 404 for an unknown id and for another tenant's call log alike.
    pub async fn get_cdr(&self, scope: &Scope, id: &str) -> Result<CallLog, ApiError> {
        let not_found = || crate::calllog::errors::cdr_not_found(id);
        let Ok(num) = id.parse::<i64>() else {
            return Err(not_found());
        };
        let vis = Visibility {
            tenants: scope.tenants(true),
            user: None,
        };
        self.store
            .read(move |conn| store::get(conn, &vis, num))
            .await?
            .ok_or_else(not_found)
    }

    /// Stores generated call logs (each replacing its conversation's previous log) in one
    /// transaction; returns them with their ids.
    pub async fn store_logs(&self, logs: Vec<CallLog>) -> Result<Vec<CallLog>, ApiError> {
        let now = (crate::time::now_epoch() * 1_000_000.0) as i64;
        self.store
            .write(move |tx| {
                let mut out = logs;
                for log in out.iter_mut() {
                    log.id = store::replace(tx, log, now)?;
                }
                Ok(out)
            })
            .await
    }
}
