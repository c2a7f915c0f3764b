//! Parking: the lots confd provisions with the calls parked in them (AMI `ParkedCalls`,
//! one event per call), parking a call (AMI `Park`, confirmed by res_parking's
//! `ParkedCall` event) and the `call_parked`/`call_unparked`/`parked_call_hungup`/
//! `parked_call_timed_out` events from res_parking's own events. A lot is
//! `parkinglot-<id>` in Asterisk (confd's res_parking.conf).

pub mod model;
pub mod routes;

use super::actions::custom;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use self::model::{lot_json, ParkedCall, Party};
use super::actions::ami_error;
use super::CalldService;
use crate::ami::client::AmiError;
use crate::ami::frame::AmiMessage;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::bus::EventSpec;
use crate::confd::docstore::{self, Key};
use crate::confd::parking_lots::{self, ParkingLot};
use crate::control::model::Channel;

/// How long a park waits for res_parking to report the call parked.
const PARK_CONFIRMATION: Duration = Duration::from_secs(5);

/// What calld knows of parked calls beyond what `ParkedCalls` lists: who parked each (the
/// list only gives the parker's dial string), by parkee call id.
#[derive(Default)]
pub struct Parked {
    calls: DashMap<String, ParkedCall>,
    /// The parker of a park calld asked for, until res_parking confirms it.
    parkers: DashMap<String, Party>,
}

/// `PUT /calls/{id}/park` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParkBody {
    pub parking_id: i64,
    #[serde(default)]
    pub preferred_slot: Option<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// upstream's 404 for a lot that does not exist or that the caller may not see.
pub fn no_such_parking(id: impl std::fmt::Display) -> ApiError {
    custom(
        warp::http::StatusCode::NOT_FOUND,
        "no-such-parking",
        "No such parking",
        json!({ "parking_id": id.to_string() }),
    )
}

impl CalldService {
    /// The lots confd holds (one when `only`): `(id, tenant, lot)`.
    async fn lot_rows(&self, only: Option<i64>) -> Result<Vec<(i64, Uuid, ParkingLot)>, ApiError> {
        self.store
            .read(move |c| {
                let rows = match only {
                    Some(id) => docstore::get(c, parking_lots::TABLE, Key::Id(id))?
                        .into_iter()
                        .collect(),
                    None => {
                        let mut stmt =
                            c.prepare_cached(&format!("SELECT id FROM {} ORDER BY id", parking_lots::TABLE))?;
                        let ids: Vec<i64> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
                        let mut rows = Vec::with_capacity(ids.len());
                        for id in ids {
                            rows.extend(docstore::get(c, parking_lots::TABLE, Key::Id(id))?);
                        }
                        rows
                    }
                };
                rows.into_iter()
                    .map(|row| {
                        let lot: ParkingLot = crate::confd::resource::from_map(row.doc)?;
                        Ok((row.id, row.tenant_uuid, lot))
                    })
                    .collect::<Result<Vec<_>, ApiError>>()
            })
            .await
    }

    /// A lot the scope may see, else 404.
    async fn visible_lot(&self, scope: &Scope, id: &str) -> Result<(i64, Uuid, ParkingLot), ApiError> {
        let n: i64 = id.parse().map_err(|_| no_such_parking(id))?;
        self.lot_rows(Some(n))
            .await?
            .into_iter()
            .find(|(_, tenant, _)| scope.can_see(*tenant))
            .ok_or_else(|| no_such_parking(id))
    }

    /// The calls parked now (in one lot when `only`), from Asterisk.
    async fn parked_calls(&self, only: Option<i64>) -> Result<Vec<ParkedCall>, ApiError> {
        let mut action = AmiMessage::new().with("Action", "ParkedCalls");
        if let Some(id) = only {
            action = action.with("ParkingLot", parking_lots::asterisk_name(id));
        }
        let reply = match self.ami_link()?.send(action).await {
            Ok(reply) => reply,
            // A lot without its extension is not loaded in Asterisk: nothing parked there.
            Err(AmiError::ActionFailed { message }) if message.to_ascii_lowercase().contains("could not be found") => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(ami_error("", e)),
        };
        let now = OffsetDateTime::now_utc();
        Ok(reply
            .list_items()
            .filter(|m| m.get("Event").is_some_and(|e| e.eq_ignore_ascii_case("ParkedCall")))
            .filter_map(|m| ParkedCall::from_ami(m, now))
            .map(|mut call| {
                self.fill_parker(&mut call);
                call
            })
            .collect())
    }

    /// The parker's caller id when the message had none: as seen when it was parked, else
    /// the live channel of the parker's device (`ParkerDialString` is `PJSIP/<device>`).
    fn fill_parker(&self, call: &mut ParkedCall) {
        if call.parker != Party::default() {
            return;
        }
        if let Some(known) = self.parking.calls.get(&call.call_id) {
            if known.parker != Party::default() {
                call.parker = known.parker.clone();
                return;
            }
        }
        if call.parker_dial_string.is_empty() {
            return;
        }
        if let Some(ch) = self
            .live
            .channels()
            .into_iter()
            .find(|c| c.endpoint == call.parker_dial_string)
        {
            call.parker = Party {
                name: ch.caller.name,
                number: ch.caller.number,
            };
        }
    }

    /// `GET /parkinglots`: the scope's lots with their parked calls.
    pub async fn parking_lots(&self, scope: &Scope) -> Result<Value, ApiError> {
        let tenants = scope.tenants(false);
        let lots: Vec<_> = self
            .lot_rows(None)
            .await?
            .into_iter()
            .filter(|(_, tenant, _)| tenants.contains(tenant))
            .collect();
        let calls = if lots.is_empty() {
            Vec::new()
        } else {
            self.parked_calls(None).await?
        };
        let items: Vec<Value> = lots
            .iter()
            .map(|(id, _, lot)| {
                let name = parking_lots::asterisk_name(*id);
                let mine: Vec<ParkedCall> = calls.iter().filter(|c| c.lot == name).cloned().collect();
                lot_json(*id, lot, &mine)
            })
            .collect();
        Ok(json!({ "items": items }))
    }

    /// `GET /parkinglots/{id}`.
    pub async fn parking_lot(&self, scope: &Scope, id: &str) -> Result<Value, ApiError> {
        let (id, _, lot) = self.visible_lot(scope, id).await?;
        let calls = self.parked_calls(Some(id)).await?;
        Ok(lot_json(id, &lot, &calls))
    }

    /// `PUT /calls/{id}/park` (the call itself) and `PUT /users/me/calls/{id}/park` (the
    /// one the user's call talks to): `{slot, timeout_at}` once res_parking parked it.
    pub async fn park(
        &self,
        scope: &Scope,
        call_id: &str,
        user: Option<Uuid>,
        body: ParkBody,
    ) -> Result<Value, ApiError> {
        if body.parking_id < 1 {
            return Err(ApiError::invalid_field(
                "parking_id",
                "Must be greater than or equal to 1.",
            ));
        }
        if body.timeout.is_some_and(|t| t < 0) {
            return Err(ApiError::invalid_field(
                "timeout",
                "Must be greater than or equal to 0.",
            ));
        }
        let (ch, owner) = self.find(scope, call_id, user).await?;
        let peer = ch.talking_to.first().and_then(|id| self.live.channel(id));
        let (parkee, parker): (Channel, Option<Channel>) = match user {
            Some(_) => match peer {
                Some(peer) => (peer, Some(ch)),
                None => {
                    return Err(custom(
                        warp::http::StatusCode::BAD_REQUEST,
                        "call-not-connected",
                        "The call is not talking to anyone to park",
                        json!({ "call_id": call_id }),
                    ))
                }
            },
            None => (ch, peer),
        };
        let (lot_id, tenant, lot) = self.visible_lot(scope, &body.parking_id.to_string()).await?;
        // The lot serves the call's tenant only.
        if tenant != owner.tenant() {
            return Err(no_such_parking(lot_id));
        }
        if let Some(slot) = &body.preferred_slot {
            if !lot.holds(slot) {
                return Err(ApiError::invalid_field(
                    "preferred_slot",
                    format!(
                        "Not a slot of parking {lot_id} ({}-{}).",
                        lot.slots_start, lot.slots_end
                    ),
                ));
            }
        }
        let parked = self.parked_calls(Some(lot_id)).await?;
        let total = lot.slots().map(|(s, e)| e - s + 1).unwrap_or(0);
        if parked.len() as u128 >= total {
            return Err(custom(
                warp::http::StatusCode::SERVICE_UNAVAILABLE,
                "parking-full",
                "The parking lot is full",
                json!({ "parking_id": lot_id }),
            ));
        }

        let mut action = AmiMessage::new()
            .with("Action", "Park")
            .with("Channel", parkee.name.as_str())
            .with("Parkinglot", parking_lots::asterisk_name(lot_id));
        if let Some(p) = &parker {
            action = action.with("TimeoutChannel", p.name.as_str());
            self.parking.parkers.insert(
                parkee.id.clone(),
                Party {
                    name: p.caller.name.clone(),
                    number: p.caller.number.clone(),
                },
            );
        }
        if let Some(slot) = &body.preferred_slot {
            action = action.with("ParkingSpace", slot.as_str());
        }
        if let Some(t) = body.timeout {
            // AMI takes milliseconds; 0 never times out.
            action = action.with("Timeout", (t.saturating_mul(1000)).to_string());
        }
        let ami = self.ami_link()?;
        let mut events = ami.subscribe();
        if let Err(e) = ami.send(action).await {
            self.parking.parkers.remove(&parkee.id);
            return Err(ami_error(&parkee.id, e));
        }
        let confirmed = tokio::time::timeout(PARK_CONFIRMATION, async {
            loop {
                match events.recv().await {
                    Ok(m)
                        if m.get("Event") == Some("ParkedCall")
                            && m.get("ParkeeUniqueid") == Some(parkee.id.as_str()) =>
                    {
                        return ParkedCall::from_ami(&m, OffsetDateTime::now_utc());
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten();
        let Some(call) = confirmed else {
            self.parking.parkers.remove(&parkee.id);
            return Err(custom(
                warp::http::StatusCode::SERVICE_UNAVAILABLE,
                "asterisk-ami-error",
                "Asterisk did not report the call parked",
                json!({ "call_id": parkee.id, "parking_id": lot_id }),
            ));
        };
        tracing::info!(call_id = %parkee.id, parking_id = lot_id, slot = %call.slot, "call parked");
        Ok(json!({ "slot": call.slot, "timeout_at": model::iso(call.timeout_at) }))
    }

    /// One res_parking event: the parked calls known, the call's `parked`, the bus event.
    async fn parking_event(&self, m: &AmiMessage) {
        // List items of a `ParkedCalls` action carry its ActionID: not news.
        if m.action_id().is_some() {
            return;
        }
        let (name, ends) = match m.get("Event") {
            Some("ParkedCall") => ("call_parked", false),
            Some("UnParkedCall") => ("call_unparked", true),
            Some("ParkedCallGiveUp") => ("parked_call_hungup", true),
            Some("ParkedCallTimeOut") => ("parked_call_timed_out", true),
            _ => return,
        };
        let Some(mut call) = ParkedCall::from_ami(m, OffsetDateTime::now_utc()) else {
            tracing::debug!(event = name, "parking event without parkee or lot ignored");
            return;
        };
        if call.parker == Party::default() {
            if let Some((_, p)) = self.parking.parkers.remove(&call.call_id) {
                call.parker = p;
            }
        }
        self.fill_parker(&mut call);
        if ends {
            self.parking.calls.remove(&call.call_id);
        } else {
            self.parking.calls.insert(call.call_id.clone(), call.clone());
        }
        if let Some(mut marks) = self.marks.get_mut(&call.call_id) {
            marks.parked = !ends;
        } else if !ends {
            self.marks.entry(call.call_id.clone()).or_default().parked = true;
        }
        self.poke(&call.call_id);

        let Some(lot_id) = parking_lots::id_of_asterisk_name(&call.lot) else {
            return;
        };
        let tenant = match self.lot_rows(Some(lot_id)).await {
            Ok(rows) => match rows.first() {
                Some((_, tenant, _)) => *tenant,
                None => return,
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the parking lot of a parking event");
                return;
            }
        };
        let mut data = call.to_json();
        data["parking_id"] = json!(lot_id);
        if name == "call_unparked" {
            let retriever = Party::of(m, "Retriever").unwrap_or_default();
            data["retriever_call_id"] = json!(m.get("RetrieverUniqueid"));
            data["retriever_caller_id_name"] = json!(retriever.name);
            data["retriever_caller_id_num"] = json!(retriever.number);
        }
        let key = format!("parkings.{lot_id}.calls.updated");
        self.bus.publish(
            EventSpec::new(name, key.clone(), data)
                .acl(format!("events.{key}"))
                .tenant(tenant),
        );
    }
}

/// Follows res_parking's events until shutdown.
pub fn spawn_watcher(svc: Arc<CalldService>, ami: crate::ami::client::AmiClient, shutdown: CancellationToken) {
    svc.watch_ami(&ami, shutdown, "parking", |svc, m| Box::pin(svc.parking_event(m)));
}
