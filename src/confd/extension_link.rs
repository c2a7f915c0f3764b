//! The association of a resource that reaches at most one extension
//! (`PUT/DELETE /<resources>/{id}/extensions/{extension_id}`: conferences, parking lots):
//! the ACL, both rows of the same tenant, one extension per resource and one owner per
//! extension, the resource's own placement rule, in one write transaction.

use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::docstore::Row;
use super::extensions::Extension;
use super::resource::{self, association_acl, Resource};
use super::ConfdService;
use crate::api::error::ApiError;
use crate::auth::caller::Caller;

/// Where a resource's one extension is kept: `<table> (<column>, extension_id)`.
pub struct ExtensionLink {
    /// `confd_conference_extension`.
    pub table: &'static str,
    /// `conference_id`.
    pub column: &'static str,
    /// `Conference`: how errors name the resource.
    pub label: &'static str,
    /// `conferences`: the path segment, for the ACL.
    pub path: &'static str,
}

/// What an association changed (nothing when it was there already).
pub struct Linked {
    pub owner_id: i64,
    pub extension_id: i64,
    pub tenant: Uuid,
}

impl ExtensionLink {
    /// A broken association rule: confd's 400 `Resource Error - ...`.
    fn rule(&self, message: impl Into<String>) -> ApiError {
        ApiError::conflict(self.label, "", message)
    }

    /// The resource an extension reaches.
    pub fn owner_of(&self, c: &Connection, extension_id: i64) -> rusqlite::Result<Option<i64>> {
        c.query_row(
            &format!("SELECT {} FROM {} WHERE extension_id = ?1", self.column, self.table),
            [extension_id],
            |r| r.get(0),
        )
        .optional()
    }

    /// The extension of a resource.
    pub fn extension_of(&self, c: &Connection, owner_id: i64) -> rusqlite::Result<Option<i64>> {
        c.query_row(
            &format!("SELECT extension_id FROM {} WHERE {} = ?1", self.table, self.column),
            [owner_id],
            |r| r.get(0),
        )
        .optional()
    }

    /// Before the resource is deleted: its extension is dissociated, and kept (as upstream).
    pub fn forget_owner(&self, tx: &Connection, owner_id: i64) -> rusqlite::Result<()> {
        tx.execute(
            &format!("DELETE FROM {} WHERE {} = ?1", self.table, self.column),
            [owner_id],
        )?;
        Ok(())
    }

    /// Links or unlinks in `tx`; `check` (the resource's row, the extension's id and fields) is the
    /// resource's own rule for where its extension may be. `false` when nothing changed.
    fn set(
        &self,
        tx: &Connection,
        owner: &Row,
        ext: &Row,
        associate: bool,
        check: impl FnOnce(&Connection, &Row, i64, &Extension) -> Result<(), ApiError>,
    ) -> Result<bool, ApiError> {
        let current = self.owner_of(tx, ext.id)?;
        if !associate {
            if current != Some(owner.id) {
                return Err(self.rule(format!("{} and Extension are not associated", self.label)));
            }
            tx.execute(&format!("DELETE FROM {} WHERE extension_id = ?1", self.table), [ext.id])?;
            return Ok(true);
        }
        if current == Some(owner.id) {
            return Ok(false);
        }
        if self.extension_of(tx, owner.id)?.is_some() {
            return Err(self.rule(format!("{} already has an Extension", self.label)));
        }
        if let Some(other) = super::extension_owner(tx, ext.id)? {
            return Err(self.rule(format!("Extension is already associated with a {other}")));
        }
        let extension: Extension = resource::from_map(ext.doc.clone())?;
        check(tx, owner, ext.id, &extension)?;
        tx.execute(
            &format!(
                "INSERT INTO {} ({}, extension_id) VALUES (?1, ?2)",
                self.table, self.column
            ),
            params![owner.id, ext.id],
        )?;
        Ok(true)
    }
}

impl ConfdService {
    /// PUT (`associate`) or DELETE `/<link.path>/{owner_id}/extensions/{extension_id}`;
    /// `Some` when it changed something (the caller announces it).
    pub(crate) async fn link_extension<R: Resource>(
        &self,
        link: &'static ExtensionLink,
        caller: &Caller,
        owner_id: &str,
        extension_id: &str,
        associate: bool,
        check: impl FnOnce(&Connection, &Row, i64, &Extension) -> Result<(), ApiError> + Send + 'static,
    ) -> Result<Option<Linked>, ApiError> {
        let acl = association_acl(link.path, owner_id, "extensions", extension_id, associate);
        let scope = caller.require(&acl)?;
        let owner = self.find::<R>(&scope, owner_id).await?;
        let ext = self.find::<Extension>(&scope, extension_id).await?;
        if owner.tenant_uuid != ext.tenant_uuid {
            return Err(link.rule(format!("{} and Extension are not in the same tenant", link.label)));
        }
        let linked = Linked {
            owner_id: owner.id,
            extension_id: ext.id,
            tenant: owner.tenant_uuid,
        };
        let changed = self
            .store
            .write(move |tx| link.set(tx, &owner, &ext, associate, check))
            .await?;
        Ok(changed.then_some(linked))
    }
}
