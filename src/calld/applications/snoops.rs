//! Snoops (`/applications/{uuid}/calls/{call_id}/snoops`, `/applications/{uuid}/snoops`):
//! a supervisor's call of the application listens to another of its calls and may
//! whisper to one side.
//!
//! Asterisk's way is a snoop channel (ARI `POST /channels/{id}/snoop`, spying both
//! directions, whispering as asked) put in a mixing bridge with the snooping call; the
//! bridge's id is the snoop's uuid. The snoop channel enters the application with the
//! arguments `snoop,<uuid>` and joins its bridge then, when Asterisk says it is in Stasis
//! (adding it before would race its `StasisStart`). ARI cannot change a snoop channel's
//! whisper direction, so a new whisper mode is a new snoop channel in the same bridge.
//! A snoop ends with either call, or with its snoop channel.

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::StatusCode;

use super::stasis_name;
use super::state::{snoop_object, Publisher, Snoop, WhisperMode};
use crate::api::error::ApiError;
use crate::ari::client::{AddChannelOptions, AriClient, BridgeParams, SnoopDirection, SnoopParams};
use crate::ari::error::AriError;
use crate::auth::caller::Scope;
use crate::calld::actions::ari_error;
use crate::calld::CalldService;

/// The first Stasis argument of a snoop channel; the second is the snoop's uuid.
pub const SNOOP_ARG: &str = "snoop";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnoopBody {
    snooping_call_id: String,
    whisper_mode: WhisperMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnoopUpdate {
    whisper_mode: WhisperMode,
}

fn no_such_snoop(uuid: &str) -> ApiError {
    ApiError::Custom {
        status: StatusCode::NOT_FOUND,
        error_id: "no-such-snoop",
        message: "No such snoop".into(),
        details: json!({ "snoop_uuid": uuid }),
    }
}

/// The snoop a channel entering the application with `args` belongs to, if it is a
/// snoop channel.
pub fn snoop_of(args: &[String]) -> Option<&str> {
    match args {
        [first, uuid, ..] if first == SNOOP_ARG => Some(uuid),
        _ => None,
    }
}

impl CalldService {
    fn app_snoop(&self, app: Uuid, uuid: &str) -> Result<Snoop, ApiError> {
        self.applications
            .snoops
            .get(uuid)
            .filter(|s| s.app == app)
            .map(|s| s.clone())
            .ok_or_else(|| no_such_snoop(uuid))
    }

    /// Creates Asterisk's snoop channel on the snooped call, into the application.
    async fn snoop_channel(&self, ari: &AriClient, snoop: &Snoop) -> Result<(), AriError> {
        let params = SnoopParams {
            app: stasis_name(snoop.app),
            app_args: Some(format!("{SNOOP_ARG},{}", snoop.uuid)),
            spy: Some(SnoopDirection::Both),
            whisper: Some(snoop.whisper_mode.direction()),
            snoop_id: Some(snoop.channel_id.clone()),
        };
        ari.snoop(&snoop.snooped_call_id, &params).await.map(|_| ())
    }

    /// Writes the snoop into both calls' `snoops` (or takes it out) and says so.
    fn mark_snoop_calls(&self, snoop: &Snoop, on: bool, p: &Publisher<'_>) {
        for (id, role) in [
            (&snoop.snooped_call_id, "snooped"),
            (&snoop.snooping_call_id, "snooper"),
        ] {
            let updated = self.applications.update_call(id, |c| {
                if on {
                    c.snoops
                        .insert(snoop.uuid.clone(), json!({ "uuid": snoop.uuid, "role": role }));
                } else {
                    c.snoops.remove(&snoop.uuid);
                }
            });
            if let Some(call) = updated {
                p.call("application_call_updated", &call);
            }
        }
    }

    /// `POST /applications/{uuid}/calls/{call_id}/snoops`.
    pub async fn application_snoop(
        &self,
        scope: &Scope,
        uuid: &str,
        snooped: &str,
        body: SnoopBody,
    ) -> Result<Value, ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        self.app_call(app, snooped)?;
        let snooping = body.snooping_call_id;
        if snooping == snooped || self.app_call(app, &snooping).is_err() {
            return Err(ApiError::invalid_field(
                "snooping_call_id",
                "Must be another call of the application.",
            ));
        }
        let ari = self.ari_link()?;
        let snoop = Snoop {
            app,
            uuid: Uuid::new_v4().to_string(),
            snooped_call_id: snooped.to_string(),
            snooping_call_id: snooping.clone(),
            whisper_mode: body.whisper_mode,
            channel_id: Uuid::new_v4().to_string(),
        };
        let bridge = BridgeParams {
            bridge_type: Some("mixing".into()),
            bridge_id: Some(snoop.uuid.clone()),
            name: Some(format!("accent-app-snoop-{snooped}")),
        };
        ari.create_bridge(&bridge)
            .await
            .map_err(|e| ari_error(&snoop.uuid, e))?;
        // Known before its channel exists, so the channel's StasisStart finds its bridge.
        self.applications.snoops.insert(snoop.uuid.clone(), snoop.clone());
        let started = match ari
            .add_channels(&snoop.uuid, &[&snooping], &AddChannelOptions::default())
            .await
        {
            Ok(()) => self.snoop_channel(ari, &snoop).await.map_err(|e| ari_error(snooped, e)),
            Err(e) => Err(ari_error(&snooping, e)),
        };
        if let Err(e) = started {
            self.applications.snoops.remove(&snoop.uuid);
            if let Err(err) = ari.destroy_bridge(&snoop.uuid).await {
                tracing::warn!(snoop = %snoop.uuid, error = %err, "snoop bridge left behind");
            }
            return Err(e);
        }
        let p = self.publisher(app, &info);
        self.mark_snoop_calls(&snoop, true, &p);
        p.snoop("created", &snoop);
        tracing::info!(application = %app, snoop = %snoop.uuid, snooped, %snooping, "snoop started");
        Ok(snoop_object(&snoop))
    }

    /// `GET /applications/{uuid}/snoops`.
    pub async fn application_snoops(&self, scope: &Scope, uuid: &str) -> Result<Value, ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        let mut snoops: Vec<Snoop> = self
            .applications
            .snoops
            .iter()
            .filter(|s| s.app == app)
            .map(|s| s.clone())
            .collect();
        snoops.sort_by(|a, b| a.uuid.cmp(&b.uuid));
        let items: Vec<Value> = snoops.iter().map(snoop_object).collect();
        Ok(json!({ "items": items }))
    }

    /// `GET /applications/{uuid}/snoops/{snoop_uuid}`.
    pub async fn application_show_snoop(&self, scope: &Scope, uuid: &str, snoop: &str) -> Result<Value, ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        Ok(snoop_object(&self.app_snoop(app, snoop)?))
    }

    /// `PUT /applications/{uuid}/snoops/{snoop_uuid}`: a new snoop channel with the new
    /// whisper mode replaces the old one in the snoop's bridge.
    pub async fn application_update_snoop(
        &self,
        scope: &Scope,
        uuid: &str,
        snoop: &str,
        body: SnoopUpdate,
    ) -> Result<(), ApiError> {
        let (app, info) = self.visible_app(scope, uuid)?;
        let old = self.app_snoop(app, snoop)?;
        if old.whisper_mode == body.whisper_mode {
            return Ok(());
        }
        let ari = self.ari_link()?;
        let new = Snoop {
            whisper_mode: body.whisper_mode,
            channel_id: Uuid::new_v4().to_string(),
            ..old.clone()
        };
        // Recorded first: the old channel's end must not end the snoop.
        self.applications.snoops.insert(new.uuid.clone(), new.clone());
        if let Err(e) = self.snoop_channel(ari, &new).await {
            self.applications.snoops.insert(old.uuid.clone(), old.clone());
            return Err(ari_error(&old.snooped_call_id, e));
        }
        hangup_quietly(ari, &old.channel_id).await;
        self.publisher(app, &info).snoop("updated", &new);
        tracing::info!(application = %app, snoop, whisper = ?new.whisper_mode, "snoop whisper mode changed");
        Ok(())
    }

    /// `DELETE /applications/{uuid}/snoops/{snoop_uuid}`.
    pub async fn application_delete_snoop(&self, scope: &Scope, uuid: &str, snoop: &str) -> Result<(), ApiError> {
        let (app, _) = self.visible_app(scope, uuid)?;
        let found = self.app_snoop(app, snoop)?;
        let ari = self.ari_link()?;
        match ari.hangup(&found.channel_id, None).await {
            Ok(()) | Err(AriError::NotFound { .. }) => {}
            Err(e) => return Err(ari_error(&found.channel_id, e)),
        }
        match ari.destroy_bridge(&found.uuid).await {
            Ok(()) | Err(AriError::NotFound { .. }) => {}
            Err(e) => return Err(ari_error(&found.uuid, e)),
        }
        self.end_snoop(snoop);
        Ok(())
    }

    /// Forgets a snoop, clears it from its calls and publishes its end (once).
    pub(super) fn end_snoop(&self, snoop: &str) -> Option<Snoop> {
        let (_, gone) = self.applications.snoops.remove(snoop)?;
        if let Some(info) = self.applications.app(gone.app) {
            let p = self.publisher(gone.app, &info);
            self.mark_snoop_calls(&gone, false, &p);
            p.snoop("deleted", &gone);
        }
        tracing::info!(application = %gone.app, snoop, "snoop ended");
        Some(gone)
    }

    /// A channel is gone: the snoops it took part in (as either call, or as the snoop
    /// channel) end, and what Asterisk still holds of them is cleared.
    pub(super) fn snoops_without(&self, channel: &str) {
        let ended: Vec<String> = self
            .applications
            .snoops
            .iter()
            .filter(|s| s.snooped_call_id == channel || s.snooping_call_id == channel || s.channel_id == channel)
            .map(|s| s.uuid.clone())
            .collect();
        for uuid in ended {
            let Some(gone) = self.end_snoop(&uuid) else { continue };
            let Some(ari) = self.ari.get().cloned() else { continue };
            tokio::spawn(async move {
                hangup_quietly(&ari, &gone.channel_id).await;
                if let Err(e) = ari.destroy_bridge(&gone.uuid).await {
                    if !matches!(e, AriError::NotFound { .. }) {
                        tracing::warn!(snoop = %gone.uuid, error = %e, "snoop bridge left behind");
                    }
                }
            });
        }
    }

    /// A snoop channel is in the application: into its snoop's bridge.
    pub(super) async fn snoop_entered(&self, snoop: &str, channel: &str) {
        let Some(found) = self.applications.snoops.get(snoop).map(|s| s.clone()) else {
            // A snoop deleted meanwhile: its channel has nothing to do.
            if let Some(ari) = self.ari.get() {
                hangup_quietly(ari, channel).await;
            }
            return;
        };
        let Some(ari) = self.ari.get() else { return };
        if let Err(e) = ari
            .add_channels(&found.uuid, &[channel], &AddChannelOptions::default())
            .await
        {
            tracing::warn!(snoop, error = %e, "snoop channel not added to its bridge");
        }
    }
}

async fn hangup_quietly(ari: &AriClient, channel: &str) {
    match ari.hangup(channel, None).await {
        Ok(()) | Err(AriError::NotFound { .. }) => {}
        Err(e) => tracing::warn!(channel, error = %e, "snoop channel not hung up"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snoop_channels_are_told_by_their_arguments() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(snoop_of(&args(&["snoop", "u-1"])), Some("u-1"));
        assert_eq!(snoop_of(&args(&["snoop"])), None);
        assert_eq!(snoop_of(&args(&["s04", "snoop"])), None);
        assert_eq!(snoop_of(&[]), None);
    }
}
