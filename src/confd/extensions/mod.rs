//! `/extensions`: `exten@context` entries of the dialplan. What an extension
//! routes to (a line, an incall, an outcall...) is an association owned by
//! that resource; an extension in use cannot be deleted.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::contexts::{self, ContextType};
use super::docstore::Row;
use super::reload::Reload;
use super::resource::{Check, Def, EventDef, Resource};
use crate::api::error::ApiError;

pub const TABLE: &str = "confd_extension";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    pub exten: String,
    pub context: String,
    /// Deprecated inverse of `enabled`; kept in step with it.
    #[serde(default)]
    pub commented: Option<bool>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl Extension {
    pub fn is_enabled(&self) -> bool {
        match (self.enabled, self.commented) {
            (Some(e), _) => e,
            (None, Some(c)) => !c,
            (None, None) => true,
        }
    }

    fn normalize(&mut self) {
        let enabled = self.is_enabled();
        self.enabled = Some(enabled);
        self.commented = Some(!enabled);
    }
}

/// A dialable extension or, starting with `_`, an Asterisk pattern.
pub fn valid_exten(exten: &str) -> bool {
    if exten.is_empty() || exten.len() > 40 {
        return false;
    }
    match exten.strip_prefix('_') {
        Some(pattern) => {
            !pattern.is_empty()
                && pattern
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"XZNxzn.![]-*#+".contains(&b))
        }
        None => exten.bytes().all(|b| b.is_ascii_digit() || b"*#+".contains(&b)),
    }
}

impl Resource for Extension {
    const DEF: Def = Def {
        path: &["extensions"],
        acl: "extensions",
        table: TABLE,
        kind: "Extension",
        by_uuid: false,
        show_id: true,
        show_uuid: false,
        orderable: &["id", "exten", "context"],
        filterable: &["id", "exten", "context", "enabled", "commented"],
        searchable: &["exten", "context"],
        default_order: "exten",
        read_only: &[
            "lines",
            "incall",
            "outcall",
            "group",
            "queue",
            "conference",
            "parking_lot",
            "type",
        ],
        created: EventDef {
            name: "extension_created",
            routing_key: "config.extensions.created",
        },
        edited: EventDef {
            name: "extension_edited",
            routing_key: "config.extensions.edited",
        },
        deleted: EventDef {
            name: "extension_deleted",
            routing_key: "config.extensions.deleted",
        },
        reloads: &[Reload::Dialplan],
    };

    fn prepare(&mut self, _tenant: uuid::Uuid, _uuid: uuid::Uuid, _creating: bool) {
        self.normalize();
    }

    /// `enabled` and `commented` say the same thing: the one the body names wins.
    fn merge(base: &mut Map<String, Value>, body: Map<String, Value>) {
        if body.contains_key("commented") && !body.contains_key("enabled") {
            base.remove("enabled");
        }
        if body.contains_key("enabled") {
            base.remove("commented");
        }
        base.extend(body);
    }

    fn check(&self, ctx: &Check<'_>) -> Result<(), ApiError> {
        if !valid_exten(&self.exten) {
            return Err(ApiError::invalid_field(
                "exten",
                "String does not match expected pattern.",
            ));
        }
        let (row, context) = contexts::by_name(ctx.tx, &self.context)?
            .filter(|(row, _)| row.tenant_uuid == ctx.tenant_uuid)
            .ok_or_else(|| {
                ApiError::invalid_field("context", format!("Context was not found ('name': '{}')", self.context))
            })?;
        let _ = row;
        if self.exten.starts_with('_') && context.kind != ContextType::Outcall {
            return Err(ApiError::invalid_field(
                "exten",
                "Patterns are only allowed in outcall contexts",
            ));
        }
        let in_ranges =
            |ranges: &[&[contexts::Range]]| ranges.iter().any(|rs| rs.iter().any(|r| r.contains(&self.exten)));
        let inside = match context.kind {
            ContextType::Internal => in_ranges(&[
                &context.user_ranges,
                &context.group_ranges,
                &context.queue_ranges,
                &context.conference_room_ranges,
            ]),
            ContextType::Incall => in_ranges(&[&context.incall_ranges]),
            _ => true,
        };
        if !inside {
            return Err(ApiError::invalid_field(
                "exten",
                format!(
                    "Extension '{}' is outside of range for context '{}'",
                    self.exten, self.context
                ),
            ));
        }
        let taken: Option<i64> = ctx
            .tx
            .query_row(
                &format!("SELECT id FROM {TABLE} WHERE exten = ?1 AND context = ?2 AND id IS NOT ?3"),
                params![self.exten, self.context, ctx.id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = ctx.id {
            // A line's extension stays internal and inside the user ranges.
            if !super::lines::lines_of_extension(ctx.tx, id)?.is_empty() {
                super::lines::check_line_extension(ctx.tx, ctx.tenant_uuid, self)?;
            }
            // An incall's DID stays in its incall ranges, an outcall's pattern in an outcall context.
            if super::incalls::incall_of_extension(ctx.tx, id)?.is_some() {
                super::incalls::check_incall_extension(ctx.tx, ctx.tenant_uuid, self)?;
            }
            if super::outcalls::outcall_of_extension(ctx.tx, id)?.is_some() {
                super::outcalls::check_outcall_extension(ctx.tx, ctx.tenant_uuid, self)?;
            }
            if super::conferences::conference_of_extension(ctx.tx, id)?.is_some() {
                super::conferences::check_conference_extension(ctx.tx, ctx.tenant_uuid, self)?;
            }
            super::parking_lots::check_lot_extension(ctx.tx, ctx.tenant_uuid, id, self)?;
        }
        super::parking_lots::check_not_in_slots(ctx.tx, &self.exten, &self.context)?;
        if taken.is_some() {
            return Err(ApiError::conflict(
                "Extension",
                "exten",
                format!(
                    "Extension already exists ('exten': '{}', 'context': '{}')",
                    self.exten, self.context
                ),
            ));
        }
        Ok(())
    }

    fn relations(c: &Connection, row: &Row, obj: &mut Map<String, Value>) -> rusqlite::Result<()> {
        super::extension_relations(c, row.id, obj)
    }

    fn after_write(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        super::lines::extension_changed(tx, row.id)
    }

    fn before_delete(tx: &Connection, row: &Row) -> Result<(), ApiError> {
        if let Some(owner) = super::extension_owner(tx, row.id)? {
            return Err(ApiError::conflict(
                "Extension",
                "id",
                format!("Extension is associated with a {owner}"),
            ));
        }
        Ok(())
    }

    fn event_data(obj: &Map<String, Value>) -> Value {
        json!({
            "id": obj.get("id"),
            "exten": obj.get("exten"),
            "context": obj.get("context"),
            "tenant_uuid": obj.get("tenant_uuid"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extens_and_patterns() {
        for ok in ["1000", "*90", "#", "+33123", "_0XXXXXXXXX", "_X.", "_[1-3]XX"] {
            assert!(valid_exten(ok), "{ok}");
        }
        for bad in [
            "",
            "10 00",
            "1000\n",
            "abc",
            "_",
            "1000,1",
            "[default]",
            &"1".repeat(41),
        ] {
            assert!(!valid_exten(bad), "{bad:?}");
        }
    }
}
