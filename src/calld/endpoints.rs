//! `/lines` and `/trunks`: each line's or trunk's endpoint with whether it is registered and
//! how many calls it carries, and `line_status_updated`/`trunk_status_updated` when that
//! changes.
//!
//! A SIP endpoint is registered when Asterisk's device state says it can be reached: PJSIP
//! reports `UNAVAILABLE` while no contact is registered and `NOT_INUSE`/`INUSE`/... once one
//! is (recorded in scenario 20). Other technologies, and a SIP endpoint Asterisk has not
//! reported, have a `null` status, as upstream.

use std::collections::HashMap;

use serde_json::{json, Value};

use super::calls::ListQuery;
use super::owners::{EndpointKind, EndpointRec, Owners};
use super::CalldService;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::control::model::DeviceStateValue;

fn registered(state: &DeviceStateValue) -> bool {
    !matches!(
        state,
        DeviceStateValue::Unavailable | DeviceStateValue::Unknown | DeviceStateValue::Invalid
    )
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Line => "line",
            EndpointKind::Trunk => "trunk",
        }
    }
}

impl CalldService {
    /// The status object of one endpoint; `counts` is device -> live channels.
    /// `state`: the device state a change carried, which the live state may already have
    /// moved past (a register then unregister must publish both); else the current one.
    pub(super) fn endpoint_status(
        &self,
        rec: &EndpointRec,
        counts: &HashMap<String, usize>,
        state: Option<&DeviceStateValue>,
    ) -> Value {
        let registered = match (rec.technology, rec.device.as_deref()) {
            ("sip", Some(d)) => match state {
                Some(s) => Some(registered(s)),
                None => self.live.device_state(d).map(|s| registered(&s.state)),
            },
            _ => None,
        };
        let calls = rec.device.as_deref().and_then(|d| counts.get(d)).copied().unwrap_or(0);
        json!({
            "id": rec.id,
            "type": rec.kind.as_str(),
            "technology": rec.technology,
            "name": rec.name,
            "registered": registered,
            "current_call_count": calls,
        })
    }

    /// Live channels per device.
    pub(super) fn call_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for ch in self.live.channels() {
            *counts.entry(ch.endpoint).or_insert(0) += 1;
        }
        counts
    }

    /// The statuses of the lines or trunks of the scope's tenants.
    pub async fn endpoint_statuses(&self, scope: &Scope, kind: EndpointKind, q: &ListQuery) -> Result<Value, ApiError> {
        let tenants = scope.tenants(q.recurse()?);
        let owners: std::sync::Arc<Owners> = self.owners.get(&self.store).await?;
        let counts = self.call_counts();
        let items: Vec<Value> = owners
            .endpoints()
            .iter()
            .filter(|e| e.kind == kind && tenants.contains(&e.tenant))
            .map(|e| self.endpoint_status(e, &counts, None))
            .collect();
        let n = items.len();
        Ok(json!({ "items": items, "total": n, "filtered": n }))
    }
}
