//! accent-auth: tenants, users, groups, policies, tokens and the ACL check
//! that every other service calls in-process.
//!
//! Each resource has the same layout: `mod.rs` (warp routes), `model.rs`
//! (request/response types and validation), `service.rs` (logic, events)
//! and `store.rs` (SQL).

pub mod acl;
pub mod bootstrap;
pub mod caller;
pub mod groups;
pub mod model;
pub mod password;
pub mod policies;
pub mod routes;
pub mod tenants;
pub mod throttle;
pub mod token;
pub mod tokens;
pub mod tree;
pub mod users;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::bus::Bus;
use crate::config::Config;
use crate::store::Store;

pub struct AuthService {
    pub config: Arc<Config>,
    pub store: Store,
    pub bus: Bus,
    /// This installation's uuid (`accent_uuid` / `xivo_uuid`).
    pub accent_uuid: Uuid,
    pub hasher: password::Hasher,
    pub throttle: throttle::Throttle,
    pub tree: tree::TenantTree,
    pub tokens: token::TokenCache,
}

impl AuthService {
    /// Builds the service and loads the tenant tree and live tokens, so tokens
    /// issued before a restart keep working.
    pub async fn start(config: Arc<Config>, store: Store, bus: Bus, accent_uuid: Uuid) -> Result<Arc<Self>, ApiError> {
        let hasher = password::Hasher::new(&config.auth.argon2).map_err(ApiError::Internal)?;
        let service = Arc::new(AuthService {
            throttle: throttle::Throttle::new(config.auth.throttle.clone()),
            config,
            store,
            bus,
            accent_uuid,
            hasher,
            tree: tree::TenantTree::default(),
            tokens: token::TokenCache::default(),
        });
        service.reload_tree().await?;
        let now = crate::time::now_epoch();
        let live = service
            .store
            .read(move |c| tokens::store::load_live_tokens(c, now))
            .await?;
        let count = live.len();
        for t in live {
            service.tokens.insert(Arc::new(t));
        }
        tracing::info!(tokens = count, "auth started");
        Ok(service)
    }

    /// Re-reads the tenant tree; called after every tenant write.
    pub async fn reload_tree(&self) -> Result<(), ApiError> {
        let pairs = self.store.read(tenants::store::parent_pairs).await?;
        self.tree.replace(pairs);
        Ok(())
    }

    /// Purges expired sessions every `token_cleanup_interval` until shutdown.
    pub fn spawn_cleanup(self: &Arc<Self>, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let period = std::time::Duration::from_secs(self.config.auth.token_cleanup_interval);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {
                        if let Err(e) = service.purge_expired().await {
                            tracing::warn!(error = %e, "token cleanup failed");
                        }
                    }
                }
            }
        })
    }
}
