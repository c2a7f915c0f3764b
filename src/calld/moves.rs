//! Calls that calld bridges itself (a call connected to a user, relocates): how a phone's
//! call gets into accentd's own Stasis application, and the two-party bridges calld makes
//! there.
//!
//! ARI controls only channels inside a Stasis application. A channel in another one moves
//! with `POST /channels/{id}/move`; a channel in the dialplan (a phone's call) goes through
//! AMI `Redirect` to the `accentd-stasis` context of accentd-dialplan.conf, whose extension is
//! the purpose (`Stasis(accentd,<purpose>)`). Redirecting one party of a two-party bridge
//! makes Asterisk hang up the other (recorded in scenario 07b), so both parties of a call
//! move in one `Redirect` (`ExtraChannel`) when both must stay.
//!
//! A pair bridge (`accentd-pair-<id>`) ends with its call: when one party is left alone in
//! it, calld hangs that party up and destroys the bridge, as a hangup ends a phone's call.

use serde_json::json;

use super::actions::{ari_error, custom};
use super::CalldService;
use crate::ami::frame::AmiMessage;
use crate::api::error::ApiError;
use crate::ari::client::{AddChannelOptions, BridgeParams};
use crate::ari::events::AriEvent;
use crate::ari::models;
use crate::control::model::{Channel, Dialplan, Party};

/// The dialplan context that sends a channel into accentd's Stasis application.
pub const STASIS_CONTEXT: &str = "accentd-stasis";
/// The id prefix of calld's two-party bridges.
pub const PAIR_BRIDGE_PREFIX: &str = "accentd-pair-";

/// A live-state channel from an ARI snapshot (a channel calld just originated, which the
/// live state has not seen yet): what its call object needs.
pub(super) fn live_channel(c: &models::Channel) -> Channel {
    // `PJSIP/2002-00000014` -> `PJSIP/2002`; `Local/s@ctx-0000001d;1` -> `Local/s@ctx`.
    let base = c.name.split(';').next().unwrap_or(&c.name);
    let endpoint = base.rsplit_once('-').map_or(base, |(device, _)| device).to_string();
    Channel {
        id: c.id.clone(),
        name: c.name.clone(),
        technology: c.name.split('/').next().unwrap_or_default().to_string(),
        endpoint,
        state: c.state.clone(),
        caller: Party {
            name: c.caller.name.clone(),
            number: c.caller.number.clone(),
        },
        connected: Party {
            name: c.connected.name.clone(),
            number: c.connected.number.clone(),
        },
        linkedid: String::new(),
        dialplan: Dialplan {
            context: c.dialplan.context.clone(),
            exten: c.dialplan.exten.clone(),
            priority: c.dialplan.priority,
            app_name: c.dialplan.app_name.clone(),
            app_data: c.dialplan.app_data.clone(),
        },
        bridge_id: None,
        talking_to: Vec::new(),
        on_hold: false,
        moh: false,
        muted: None,
        queue: None,
        stasis_app: None,
        dialed_by: None,
        dial_status: None,
        dtmf_received: String::new(),
        dtmf_count: 0,
        answered_at: None,
        hangup_cause: None,
        hungup_at: None,
        created_at: c.created_at(),
    }
}

/// `"name" <number>` for an originate's `callerId`, from a caller id that may hold anything.
pub(super) fn caller_id_text(party: &Party) -> Option<String> {
    let safe = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>'))
            .collect::<String>()
    };
    let number = safe(&party.number);
    (!number.is_empty()).then(|| format!("\"{}\" <{number}>", safe(&party.name)))
}

impl CalldService {
    /// Sends `channels` into accentd's Stasis application, where each enters with `purpose`
    /// as its only argument. Those in the dialplan move in one AMI `Redirect`, so two parties
    /// of one bridge both stay up.
    pub(super) async fn bring_into_stasis(&self, channels: &[&Channel], purpose: &str) -> Result<(), ApiError> {
        let main = self.main_app().to_string();
        if let Some(ch) = channels.iter().find(|c| c.stasis_app.as_deref() == Some(main.as_str())) {
            // Already in the application: no StasisStart would come to take it.
            return Err(custom(
                warp::http::StatusCode::CONFLICT,
                "call-already-controlled",
                "The call is already controlled by calld",
                json!({ "call_id": ch.id }),
            ));
        }
        let (in_apps, in_dialplan): (Vec<&Channel>, Vec<&Channel>) =
            channels.iter().copied().partition(|c| c.stasis_app.is_some());
        if !in_apps.is_empty() {
            let ari = self.ari_link()?;
            for ch in in_apps {
                ari.move_channel(&ch.id, &main, Some(purpose))
                    .await
                    .map_err(|e| ari_error(&ch.id, e))?;
            }
        }
        if let Some((first, rest)) = in_dialplan.split_first() {
            let mut action = AmiMessage::new()
                .with("Action", "Redirect")
                .with("Channel", first.name.as_str())
                .with("Context", STASIS_CONTEXT)
                .with("Exten", purpose)
                .with("Priority", "1");
            if let Some(extra) = rest.first() {
                action = action
                    .with("ExtraChannel", extra.name.as_str())
                    .with("ExtraContext", STASIS_CONTEXT)
                    .with("ExtraExten", purpose)
                    .with("ExtraPriority", "1");
            }
            self.ami_send(&first.id, action).await?;
        }
        tracing::info!(
            purpose,
            channels = channels.len(),
            "calls sent into accentd's Stasis application"
        );
        Ok(())
    }

    /// Creates the pair bridge `id` (once) and adds `channel` to it.
    pub(super) async fn join_pair_bridge(&self, id: &str, channel: &str, create: bool) {
        let Some(ari) = self.ari.get() else { return };
        if create {
            let params = BridgeParams {
                bridge_type: Some("mixing".into()),
                bridge_id: Some(id.to_string()),
                name: Some(id.to_string()),
            };
            if let Err(e) = ari.create_bridge(&params).await {
                tracing::warn!(bridge = id, error = %e, "pair bridge not created");
                return;
            }
        }
        if let Err(e) = ari.add_channels(id, &[channel], &AddChannelOptions::default()).await {
            tracing::warn!(bridge = id, call_id = channel, error = %e, "call not added to its pair bridge");
        }
    }

    /// Hangs a channel up over ARI, logging a failure (it may be gone already).
    pub(super) async fn hang_up_quietly(&self, id: &str, why: &str) {
        let Some(ari) = self.ari.get() else { return };
        match ari.hangup(id, None).await {
            Ok(()) => tracing::info!(call_id = id, why, "call hung up"),
            Err(e) => tracing::debug!(call_id = id, why, error = %e, "hangup not done"),
        }
    }

    /// A pair bridge that lost a party: the one left is hung up, the empty bridge destroyed.
    pub(super) async fn follow_pair_bridges(&self, event: &AriEvent) {
        let AriEvent::ChannelLeftBridge(e) = event else { return };
        if !e.bridge.id.starts_with(PAIR_BRIDGE_PREFIX) {
            return;
        }
        match e.bridge.channels.as_slice() {
            [alone] => self.hang_up_quietly(alone, "alone in its pair bridge").await,
            [] => {
                if let Some(ari) = self.ari.get() {
                    if let Err(err) = ari.destroy_bridge(&e.bridge.id).await {
                        tracing::debug!(bridge = %e.bridge.id, error = %err, "pair bridge not destroyed");
                    }
                }
            }
            _ => {}
        }
    }
}
