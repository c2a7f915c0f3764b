//! Storing CELs and turning them into stored, published call logs: what the live path and the
//! batch command share.

use uuid::Uuid;

use super::cdr::model::CallLog;
use super::CallLogService;
use crate::api::error::ApiError;
use crate::bus::EventSpec;
use crate::cel::generate::{self, GenerateOutcome, StoreContexts, StoreLines};
use crate::cel::Cel;

impl CallLogService {
    /// The tenant of calls nothing else places (no known participant, no tenant in the
    /// dialplan's events): the master tenant, as upstream uses its own.
    pub fn default_tenant(&self) -> Uuid {
        self.auth.tree.master().unwrap_or_default()
    }

    /// Stores CEL rows (duplicates ignored); returns how many were new.
    pub async fn store_cels(&self, rows: Vec<Cel>) -> Result<usize, ApiError> {
        self.store
            .write(move |tx| Ok(crate::cel::store::insert_batch(tx, &rows)?))
            .await
    }

    /// Generates the calls of `linkedids` from the `cel` table (expanded through shared
    /// channels) without storing anything.
    pub async fn preview_linkedids(&self, linkedids: Vec<String>) -> Result<GenerateOutcome, ApiError> {
        let tenant = self.default_tenant();
        let outcome = self
            .store
            .read(move |conn| {
                let lines = StoreLines::load(conn)?;
                let contexts = StoreContexts::load(conn)?;
                generate::generate_for_linkedids(conn, &linkedids, &lines, &contexts, tenant)
                    .map_err(|e| ApiError::Internal(e.to_string()))
            })
            .await?;
        self.report_failures(&outcome);
        Ok(outcome)
    }

    /// Generates the calls of `linkedids`, stores their logs (replacing earlier ones of the
    /// same conversations) and, with `publish`, announces each on the bus.
    pub async fn generate_linkedids(&self, linkedids: Vec<String>, publish: bool) -> Result<GenerateOutcome, ApiError> {
        let mut outcome = self.preview_linkedids(linkedids).await?;
        outcome.logs = self.store_logs(std::mem::take(&mut outcome.logs)).await?;
        if publish {
            for log in &outcome.logs {
                self.publish_created(log);
            }
        }
        Ok(outcome)
    }

    /// Generates from rows in memory (a file being imported): only the complete calls among
    /// them. Nothing is stored.
    pub async fn generate_rows(&self, rows: Vec<Cel>) -> Result<GenerateOutcome, ApiError> {
        let tenant = self.default_tenant();
        let outcome = self
            .store
            .read(move |conn| {
                let lines = StoreLines::load(conn)?;
                let contexts = StoreContexts::load(conn)?;
                Ok::<_, ApiError>(generate::generate_all(rows, &lines, &contexts, tenant))
            })
            .await?;
        self.report_failures(&outcome);
        Ok(outcome)
    }

    fn report_failures(&self, outcome: &GenerateOutcome) {
        for (linkedid, error) in &outcome.failed {
            tracing::warn!(%linkedid, %error, "call log not generated");
        }
    }

    /// `call_log_created` for the tenant, and `call_log_user_created` (without the tags) for
    /// each participant user, as upstream.
    pub fn publish_created(&self, log: &CallLog) {
        self.bus
            .publish(EventSpec::new("call_log_created", "call_log.created", log.to_json(true)).tenant(log.tenant_uuid));
        let mut users: Vec<Uuid> = log.participants.iter().map(|p| p.user_uuid).collect();
        users.sort();
        users.dedup();
        let data = log.to_json(false);
        for user in users {
            self.bus.publish(
                EventSpec::new(
                    "call_log_user_created",
                    format!("call_log.user.{user}.created"),
                    data.clone(),
                )
                .tenant(log.tenant_uuid)
                .users(vec![user]),
            );
        }
    }
}
