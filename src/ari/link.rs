//! The state of the ARI event link, published on a `watch` channel.
//!
//! The live-state code resyncs (`GET /channels`, `GET /bridges`) every time
//! the link lands on `Connected`: events sent while the link was down are
//! lost for good. A `watch` keeps only the latest value, so a fast drop and
//! reconnect can show up as one change from `Connected{since: t1}` to
//! `Connected{since: t2}`: a consumer resyncs on every change that ends on
//! `Connected`, not only on a `Disconnected -> Connected` pair.

use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The websocket is up and the application is registered in Asterisk.
    /// `since` is when this connection came up: a new value means a new
    /// connection (and a resync).
    Connected { since: OffsetDateTime },
    /// No websocket; `reason` says why (never a secret).
    Disconnected { reason: String },
}

impl LinkState {
    pub fn is_connected(&self) -> bool {
        matches!(self, LinkState::Connected { .. })
    }

    /// The `since` of a connected link.
    pub fn since(&self) -> Option<OffsetDateTime> {
        match self {
            LinkState::Connected { since } => Some(*since),
            LinkState::Disconnected { .. } => None,
        }
    }
}
