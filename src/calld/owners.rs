//! Who a channel belongs to, from confd's store: its device (`PJSIP/<endpoint>`)
//! is a line's endpoint (then the line's main user and tenant) or a trunk's.
//! Asterisk does not know tenants or users; this is how calld sees them.

use std::collections::HashMap;

use rusqlite::Connection;
use uuid::Uuid;

/// What owns a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Line {
        line_id: i64,
        tenant: Uuid,
        user_uuid: Option<Uuid>,
    },
    Trunk {
        trunk_id: i64,
        tenant: Uuid,
    },
}

impl Owner {
    pub fn tenant(&self) -> Uuid {
        match self {
            Owner::Line { tenant, .. } | Owner::Trunk { tenant, .. } => *tenant,
        }
    }

    pub fn user_uuid(&self) -> Option<Uuid> {
        match self {
            Owner::Line { user_uuid, .. } => *user_uuid,
            Owner::Trunk { .. } => None,
        }
    }
}

/// Whether an endpoint serves a line or a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    Line,
    Trunk,
}

/// A line's or trunk's endpoint, as `/lines` and `/trunks` list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRec {
    pub kind: EndpointKind,
    /// The line or trunk id.
    pub id: i64,
    pub tenant: Uuid,
    /// `sip`, `sccp`, `iax` or `custom`, as confd names them.
    pub technology: &'static str,
    /// The endpoint's name in Asterisk (a custom endpoint's interface).
    pub name: String,
    /// The device its channels belong to (`PJSIP/<name>`, the custom interface); `None`
    /// when accentd cannot tell (SCCP, IAX).
    pub device: Option<String>,
}

/// Device (`PJSIP/<endpoint>`) -> owner, and every line and trunk endpoint.
#[derive(Debug, Default, Clone)]
pub struct Owners {
    by_device: HashMap<String, Owner>,
    endpoints: Vec<EndpointRec>,
    /// Device -> index in `endpoints`.
    endpoint_by_device: HashMap<String, usize>,
}

fn uuid(s: &str) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

impl Owners {
    /// Owners of line devices as given, without a store (benchmarks).
    pub fn from_lines(lines: impl IntoIterator<Item = (String, Owner)>) -> Owners {
        Owners {
            by_device: lines.into_iter().collect(),
            ..Owners::default()
        }
    }

    /// Two queries: SIP endpoints on lines (with the line's main user), on trunks.
    pub fn load(c: &Connection) -> rusqlite::Result<Owners> {
        let mut by_device = HashMap::new();
        let mut stmt = c.prepare(
            "SELECT json_extract(e.doc, '$.name'), le.line_id, l.tenant_uuid, u.uuid \
             FROM confd_line_endpoint le \
             JOIN confd_endpoint_sip e ON e.id = le.sip_id \
             JOIN confd_line l ON l.id = le.line_id \
             LEFT JOIN confd_user_line ul ON ul.line_id = le.line_id AND ul.main_user = 1 \
             LEFT JOIN confd_user u ON u.id = ul.user_id",
        )?;
        let rows = stmt.query_map([], |r| {
            let (name, line_id, tenant, user): (String, i64, String, Option<String>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            Ok((
                name,
                Owner::Line {
                    line_id,
                    tenant: uuid(&tenant)?,
                    user_uuid: user.as_deref().map(uuid).transpose()?,
                },
            ))
        })?;
        for row in rows {
            let (name, owner) = row?;
            by_device.insert(format!("PJSIP/{name}"), owner);
        }
        let mut stmt = c.prepare(
            "SELECT json_extract(e.doc, '$.name'), te.trunk_id, t.tenant_uuid \
             FROM confd_trunk_endpoint te \
             JOIN confd_endpoint_sip e ON e.id = te.sip_id \
             JOIN confd_trunk t ON t.id = te.trunk_id",
        )?;
        let rows = stmt.query_map([], |r| {
            let (name, trunk_id, tenant): (String, i64, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok((
                name,
                Owner::Trunk {
                    trunk_id,
                    tenant: uuid(&tenant)?,
                },
            ))
        })?;
        for row in rows {
            let (name, owner) = row?;
            by_device.insert(format!("PJSIP/{name}"), owner);
        }
        let endpoints = load_endpoints(c)?;
        let endpoint_by_device = endpoints
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.device.clone().map(|d| (d, i)))
            .collect();
        Ok(Owners {
            by_device,
            endpoints,
            endpoint_by_device,
        })
    }

    /// The line or trunk endpoint whose channels belong to `device`.
    pub fn endpoint_of(&self, device: &str) -> Option<&EndpointRec> {
        self.endpoint_by_device.get(device).and_then(|&i| self.endpoints.get(i))
    }

    /// Every line and trunk endpoint, lines first, each by id.
    pub fn endpoints(&self) -> &[EndpointRec] {
        &self.endpoints
    }

    /// The owner of a channel's device (`Channel::endpoint`).
    pub fn of(&self, device: &str) -> Option<&Owner> {
        self.by_device.get(device)
    }
}

/// Lines (SIP, SCCP, custom) and trunks (SIP, IAX, custom) with their endpoints.
fn load_endpoints(c: &Connection) -> rusqlite::Result<Vec<EndpointRec>> {
    let mut out = Vec::new();
    for (kind, sql) in [
        (
            EndpointKind::Line,
            "SELECT x.id, x.tenant_uuid, json_extract(s.doc, '$.name'), json_extract(sc.doc, '$.name'), \
                    cu.interface, NULL \
             FROM confd_line x JOIN confd_line_endpoint le ON le.line_id = x.id \
             LEFT JOIN confd_endpoint_sip s ON s.id = le.sip_id \
             LEFT JOIN confd_endpoint_sccp sc ON sc.id = le.sccp_id \
             LEFT JOIN confd_endpoint_custom cu ON cu.id = le.custom_id ORDER BY x.id",
        ),
        (
            EndpointKind::Trunk,
            "SELECT x.id, x.tenant_uuid, json_extract(s.doc, '$.name'), NULL, cu.interface, te.iax_id \
             FROM confd_trunk x JOIN confd_trunk_endpoint te ON te.trunk_id = x.id \
             LEFT JOIN confd_endpoint_sip s ON s.id = te.sip_id \
             LEFT JOIN confd_endpoint_custom cu ON cu.id = te.custom_id ORDER BY x.id",
        ),
    ] {
        let mut stmt = c.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            let (id, tenant): (i64, String) = (r.get(0)?, r.get(1)?);
            let (sip, sccp, custom, iax): (Option<String>, Option<String>, Option<String>, Option<i64>) =
                (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
            let (technology, name, device) = match (sip, sccp, custom, iax) {
                (Some(n), ..) => ("sip", n.clone(), Some(format!("PJSIP/{n}"))),
                (_, Some(n), ..) => ("sccp", n, None),
                (_, _, Some(i), _) => ("custom", i.clone(), Some(i)),
                _ => ("iax", String::new(), None),
            };
            Ok(EndpointRec {
                kind,
                id,
                tenant: uuid(&tenant)?,
                technology,
                name,
                device,
            })
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

/// The owners as of the store's last commit: reloaded only when something was written since
/// (the store's [generation](crate::store::Store::generation)), so a device provisioned a
/// moment ago is known to the very next request or event.
#[derive(Default)]
pub struct OwnersCache {
    cached: std::sync::Mutex<Option<(u64, std::sync::Arc<Owners>)>>,
}

impl OwnersCache {
    pub async fn get(
        &self,
        store: &crate::store::Store,
    ) -> Result<std::sync::Arc<Owners>, crate::api::error::ApiError> {
        // Read before loading: a write that lands during the load makes the next call reload.
        let generation = store.generation();
        if let Some((g, owners)) = self.cached.lock().ok().as_deref().and_then(Option::as_ref) {
            if *g == generation {
                return Ok(owners.clone());
            }
        }
        let owners = std::sync::Arc::new(
            store
                .read(|c| Owners::load(c).map_err(crate::api::error::ApiError::from))
                .await?,
        );
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((generation, owners.clone()));
        }
        Ok(owners)
    }
}
