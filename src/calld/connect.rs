//! `PUT /calls/{call_id}/user/{user_uuid}`: connect an existing call to a user. calld rings
//! the user's lines (every line through `accent-originate-all-lines`, as an originate with
//! `all_lines`) into accentd's Stasis application (`appArgs` `connect,<call_id>`); the call
//! stays where it is while they ring, so a user who does not answer leaves it untouched (the
//! originate's `timeout` ends the ringing). When a line answers (its `StasisStart`), the call
//! is brought into the application ([`moves`](super::moves)) and both go into a pair bridge.
//! If the call hangs up first, the ringing lines are hung up.
//!
//! Connections live in memory, keyed by the new (recipient) channel, like transfers.

use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use uuid::Uuid;

use super::moves::{caller_id_text, live_channel, PAIR_BRIDGE_PREFIX};
use super::originate::{invalid, originate_error};
use super::CalldService;
use crate::api::error::ApiError;
use crate::ari::client::OriginateParams;
use crate::ari::events::{AriEvent, StasisStart};
use crate::auth::caller::Scope;

/// upstream's ring time when the request gives none.
const DEFAULT_TIMEOUT: i64 = 30;
/// The longest ring time accepted (an hour).
const MAX_TIMEOUT: i64 = 3600;

/// A call being connected to a user.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The call connected.
    pub call: String,
    /// The user's new channel (ringing, then bridged with the call).
    pub recipient: String,
    /// Set once the recipient answered and its bridge exists.
    pub bridge: Option<String>,
}

/// `null` kept apart from a missing field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// Omitted: 30 s; `null`: no ring time limit.
    #[serde(default, deserialize_with = "present")]
    timeout: Option<Option<i64>>,
}

impl ConnectRequest {
    /// ARI's originate `timeout`: seconds, `-1` for none.
    fn ari_timeout(&self) -> Result<i64, ApiError> {
        match self.timeout {
            None => Ok(DEFAULT_TIMEOUT),
            Some(None) => Ok(-1),
            Some(Some(t)) if (1..=MAX_TIMEOUT).contains(&t) => Ok(t),
            Some(Some(_)) => Err(ApiError::invalid_field(
                "timeout",
                format!("Must be between 1 and {MAX_TIMEOUT}, or null."),
            )),
        }
    }
}

impl CalldService {
    /// Whether calld is already moving the call (a connection or a relocate in progress).
    pub(super) fn call_busy(&self, id: &str) -> bool {
        self.connections.iter().any(|c| c.call == id || c.recipient == id) || self.relocate_of_call(id).is_some()
    }

    /// Whether a user is being connected to the call (for tests and logs).
    pub fn connection_pending(&self, call: &str) -> bool {
        self.connections.iter().any(|c| c.call == call)
    }

    /// `PUT /calls/{call_id}/user/{user_uuid}`: the new call (the user's ringing side).
    pub async fn connect_user(
        &self,
        scope: &Scope,
        call_id: &str,
        user: &str,
        req: ConnectRequest,
    ) -> Result<Value, ApiError> {
        let timeout = req.ari_timeout()?;
        let bad_user = || invalid("invalid-user", "Invalid user: not found", json!({ "user_uuid": user }));
        let user = Uuid::parse_str(user).map_err(|_| bad_user())?;
        let (call, _) = self.find(scope, call_id, None).await?;
        if self.call_busy(&call.id) {
            return Err(super::actions::custom(
                warp::http::StatusCode::CONFLICT,
                "call-already-controlled",
                "The call is already being connected or relocated",
                json!({ "call_id": call.id }),
            ));
        }
        let caller = self
            .user_lines(user, scope.tenants(false))
            .await?
            .ok_or_else(bad_user)?;
        let (plan, _) = Self::plan(user, &caller, None, true, false, false)?;
        let ari = self.ari_link()?;
        if call.stasis_app.is_none() {
            // The call will move through AMI once the user answers: refuse now rather than
            // ring a user for nothing.
            self.ami_link()?;
        }
        let params = OriginateParams {
            endpoint: plan.endpoint.clone(),
            app: Some(self.main_app().to_string()),
            app_args: Some(format!("connect,{}", call.id)),
            caller_id: caller_id_text(&call.caller),
            timeout: Some(timeout),
            originator: Some(call.id.clone()),
            variables: Some(plan.variables),
            ..OriginateParams::default()
        };
        let ch = ari
            .originate(&params)
            .await
            .map_err(|e| originate_error("call-creation-failed", &plan.endpoint, e))?;
        self.connections.insert(
            ch.id.clone(),
            Connection {
                call: call.id.clone(),
                recipient: ch.id.clone(),
                bridge: None,
            },
        );
        tracing::info!(call_id = %call.id, user = %user, recipient = %ch.id, "call being connected to a user");
        let new = live_channel(&ch);
        Ok(self.snapshot_around(&new).await?.call(&new))
    }

    /// A channel entered the application for a connection: the user answered
    /// (`connect,<call_id>`), or the call arrived (`connect`).
    pub(super) async fn connect_entered(&self, e: &StasisStart) {
        let id = e.channel.id.as_str();
        if e.args.len() > 1 {
            let Some(bridge) = self.connections.get_mut(id).map(|mut c| {
                let bridge = format!("{PAIR_BRIDGE_PREFIX}{id}");
                c.bridge = Some(bridge.clone());
                bridge
            }) else {
                // Not one calld rings now (accentd restarted since): nobody to connect it to.
                self.hang_up_quietly(id, "answered a connection calld does not know")
                    .await;
                return;
            };
            let call_id = self.connections.get(id).map(|c| c.call.clone()).unwrap_or_default();
            self.join_pair_bridge(&bridge, id, true).await;
            let Some(call) = self.live.channel(&call_id) else {
                self.connections.remove(id);
                self.hang_up_quietly(id, "the connected call is gone").await;
                return;
            };
            if let Err(err) = self.bring_into_stasis(&[&call], "connect").await {
                tracing::warn!(call_id = %call_id, error = %err, "call not brought to the user who answered");
                self.connections.remove(id);
                self.hang_up_quietly(id, "the connected call cannot be moved").await;
            }
            return;
        }
        let bridge = self
            .connections
            .iter()
            .find(|c| c.call == id)
            .and_then(|c| c.bridge.clone());
        match bridge {
            Some(bridge) => self.join_pair_bridge(&bridge, id, false).await,
            None => self.unclaimed(e).await,
        }
    }

    /// Follows connections on the main application's events: the user's side not answering
    /// (gone before its bridge), the call hanging up while the user's lines ring.
    pub(super) async fn follow_connections(&self, event: &AriEvent) {
        let AriEvent::ChannelDestroyed(e) = event else { return };
        let id = e.channel.id.as_str();
        if self.connections.remove(id).is_some() {
            tracing::info!(recipient = id, "connection over: the user's side ended");
            return;
        }
        let ringing: Vec<String> = self
            .connections
            .iter()
            .filter(|c| c.call == id)
            .map(|c| c.recipient.clone())
            .collect();
        for recipient in ringing {
            let Some((_, c)) = self.connections.remove(&recipient) else {
                continue;
            };
            // Once bridged, the pair bridge ends the other side.
            if c.bridge.is_none() {
                self.hang_up_quietly(&recipient, "the call to connect hung up").await;
            }
        }
    }
}
