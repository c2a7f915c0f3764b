//! Feature codes that change a user's services or forwards (`*25` DND, `*27`
//! call filter, `*21<number>` unconditional forward, `*20` all forwards off...).
//! The dialplan cannot write confd's state, so the generated feature code raises
//! `UserEvent(AccentUserFeature, UserID: .., Kind: service|forward, Name: ..,
//! Enabled: 1|0|toggle, Destination: ..)` (static subroutine `accent-feature`);
//! this task reads those AMI events and applies them exactly as the REST API
//! does: stored, pushed to AstDB, announced. A feature code and the web UI
//! therefore never disagree.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::model::{ForwardPatch, ServiceBody, ServicesBody, FORWARDS};
use super::TABLE;
use crate::ami::frame::AmiMessage;
use crate::ami::AmiClient;
use crate::api::error::ApiError;
use crate::confd::docstore::{self, Key};
use crate::confd::ConfdService;

/// The `UserEvent` name the dialplan raises.
pub const USER_EVENT: &str = "AccentUserFeature";

/// What a feature code asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `dnd` or `incallfilter`; `None` toggles.
    Service { name: &'static str, enabled: Option<bool> },
    /// `busy`, `noanswer`, `unconditional`, or every forward (`all`, off only).
    Forward {
        names: Vec<&'static str>,
        enabled: bool,
        destination: Option<String>,
    },
}

/// A feature-code event: the user's id and the change, or why it is ignored.
pub fn parse(msg: &AmiMessage) -> Result<(i64, Change), String> {
    let field = |k: &str| msg.get(k).map(str::trim).unwrap_or_default();
    let user_id: i64 = field("UserID")
        .parse()
        .map_err(|_| format!("UserID {:?} is not a user id", field("UserID")))?;
    let enabled = match field("Enabled") {
        "1" | "yes" | "true" => Some(true),
        "0" | "no" | "false" => Some(false),
        "toggle" => None,
        other => return Err(format!("Enabled {other:?} is not 1, 0 or toggle")),
    };
    let change = match (field("Kind"), field("Name")) {
        ("service", "dnd") => Change::Service { name: "dnd", enabled },
        ("service", "incallfilter") => Change::Service {
            name: "incallfilter",
            enabled,
        },
        ("forward", "all") if enabled == Some(false) => Change::Forward {
            names: FORWARDS.to_vec(),
            enabled: false,
            destination: None,
        },
        ("forward", name) => {
            let name = FORWARDS
                .iter()
                .copied()
                .find(|f| *f == name)
                .ok_or_else(|| format!("forward {name:?} is unknown"))?;
            let enabled = enabled.ok_or("a forward is set on or off, not toggled")?;
            let destination = Some(field("Destination")).filter(|d| !d.is_empty()).map(str::to_owned);
            if enabled && destination.is_none() {
                return Err("a forward needs a destination".into());
            }
            Change::Forward {
                names: vec![name],
                enabled,
                destination,
            }
        }
        (kind, name) => return Err(format!("unknown feature {kind:?}/{name:?}")),
    };
    Ok((user_id, change))
}

impl ConfdService {
    /// Applies a feature code's change to user `user_id`.
    pub async fn apply_feature(&self, user_id: i64, change: Change) -> Result<(), ApiError> {
        let row = self
            .store
            .read(move |c| docstore::get(c, TABLE, Key::Id(user_id)).map_err(ApiError::from))
            .await?
            .ok_or_else(|| ApiError::not_found("User", user_id.to_string()))?;
        match change {
            Change::Service { name, enabled } => {
                let enabled = match enabled {
                    Some(e) => e,
                    None => {
                        let mut f = self.user_features(&row).await?;
                        !f.services.get_mut(name).is_some_and(|s| s.enabled)
                    }
                };
                let body = ServiceBody { enabled };
                let services = if name == "dnd" {
                    ServicesBody {
                        dnd: Some(body),
                        incallfilter: None,
                    }
                } else {
                    ServicesBody {
                        dnd: None,
                        incallfilter: Some(body),
                    }
                };
                self.apply_services(&row, services).await
            }
            Change::Forward {
                names,
                enabled,
                destination,
            } => {
                let patches = names
                    .into_iter()
                    .map(|n| {
                        (
                            n,
                            ForwardPatch {
                                enabled: Some(enabled),
                                // Turning off keeps the number for next time.
                                destination: destination.clone().map(Some),
                            },
                        )
                    })
                    .collect();
                self.apply_forwards(&row, patches).await
            }
        }
    }
}

/// Applies every feature-code event the AMI link brings, until shutdown.
pub fn spawn(svc: Arc<ConfdService>, ami: &AmiClient, shutdown: CancellationToken) -> JoinHandle<()> {
    let mut events = ami.subscribe();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = events.recv() => r,
            };
            match msg {
                Ok(msg) => {
                    let ours = msg.get("Event").is_some_and(|e| e.eq_ignore_ascii_case("UserEvent"))
                        && msg.get("UserEvent") == Some(USER_EVENT);
                    if !ours {
                        continue;
                    }
                    match parse(&msg) {
                        Ok((user_id, change)) => {
                            tracing::info!(user_id, ?change, "feature code");
                            if let Err(e) = svc.apply_feature(user_id, change).await {
                                tracing::warn!(user_id, error = %e, "feature code not applied");
                            }
                        }
                        Err(reason) => tracing::warn!(%reason, "feature code event ignored"),
                    }
                }
                // Missed feature codes cannot be replayed: say so.
                Err(RecvError::Lagged(n)) => tracing::warn!(missed = n, "AMI events missed by the feature codes"),
                Err(RecvError::Closed) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(pairs: &[(&str, &str)]) -> AmiMessage {
        let mut m = AmiMessage::new()
            .with("Event", "UserEvent")
            .with("UserEvent", USER_EVENT);
        for (k, v) in pairs {
            m = m.with(*k, *v);
        }
        m
    }

    #[test]
    fn events_become_changes() {
        let e = event(&[
            ("UserID", "7"),
            ("Kind", "service"),
            ("Name", "dnd"),
            ("Enabled", "toggle"),
        ]);
        assert_eq!(
            parse(&e),
            Ok((
                7,
                Change::Service {
                    name: "dnd",
                    enabled: None
                }
            ))
        );
        let e = event(&[
            ("UserID", "7"),
            ("Kind", "forward"),
            ("Name", "unconditional"),
            ("Enabled", "1"),
            ("Destination", "1002"),
        ]);
        assert_eq!(
            parse(&e),
            Ok((
                7,
                Change::Forward {
                    names: vec!["unconditional"],
                    enabled: true,
                    destination: Some("1002".into())
                }
            ))
        );
        let e = event(&[("UserID", "7"), ("Kind", "forward"), ("Name", "all"), ("Enabled", "0")]);
        assert!(matches!(parse(&e), Ok((7, Change::Forward { names, enabled: false, .. })) if names.len() == 3));
    }

    #[test]
    fn odd_events_are_refused() {
        for pairs in [
            vec![("Kind", "service"), ("Name", "dnd"), ("Enabled", "1")],
            vec![("UserID", "x"), ("Kind", "service"), ("Name", "dnd"), ("Enabled", "1")],
            vec![
                ("UserID", "1"),
                ("Kind", "service"),
                ("Name", "dnd"),
                ("Enabled", "maybe"),
            ],
            vec![
                ("UserID", "1"),
                ("Kind", "service"),
                ("Name", "vacation"),
                ("Enabled", "1"),
            ],
            vec![("UserID", "1"), ("Kind", "forward"), ("Name", "busy"), ("Enabled", "1")],
            vec![
                ("UserID", "1"),
                ("Kind", "forward"),
                ("Name", "busy"),
                ("Enabled", "toggle"),
            ],
            vec![("UserID", "1"), ("Kind", "forward"), ("Name", "all"), ("Enabled", "1")],
            vec![("UserID", "1"), ("Kind", "other"), ("Name", "x"), ("Enabled", "1")],
        ] {
            assert!(parse(&event(&pairs)).is_err(), "{pairs:?}");
        }
    }
}
