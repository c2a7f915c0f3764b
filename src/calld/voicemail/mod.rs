//! Voicemail access (`/voicemails/{id}` and `/users/me/voicemails`): the mailboxes confd
//! provisions, read and changed in Asterisk's spool ([`spool`]), and the
//! `user_voicemail_message_*` events. Changes are found the way upstream finds them: the
//! messages of a mailbox are compared with what was last seen of it, whenever Asterisk says
//! the mailbox changed (AMI `MessageWaiting`, scenario 12) and after each change made here
//! (then Asterisk is told with `VoicemailRefresh`, so phones' message lights follow).

pub mod routes;
pub mod spool;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::OptionalExtension;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use warp::http::StatusCode;

use self::spool::{Folder, Greeting, Mailbox, Message};
use super::CalldService;
use crate::ami::frame::AmiMessage;
use crate::api::error::ApiError;
use crate::auth::caller::Scope;
use crate::bus::{escape_key, EventSpec};
use crate::confd::docstore::{self, Key};
use crate::confd::voicemails;

/// Whose mailbox a request is about.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// `/voicemails/{id}`: any of the request's tenants.
    Id(i64),
    /// `/users/me/voicemails`: the token's user's.
    Me(Uuid),
}

/// A mailbox as confd provisions it.
#[derive(Debug, Clone)]
struct Conf {
    id: i64,
    name: String,
    number: String,
    context: String,
    tenant: Uuid,
    users: Vec<Uuid>,
}

fn error(status: StatusCode, error_id: &'static str, message: String) -> ApiError {
    ApiError::Custom {
        status,
        error_id,
        message,
        details: json!({}),
    }
}

fn io_error(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "voicemail spool");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "voicemail-storage-error",
        "The voicemail storage could not be read or changed".into(),
    )
}

fn no_message(id: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "no-such-voicemail-message",
        format!("No such voicemail message: {id}"),
    )
}

fn no_greeting(g: &str) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "no-such-voicemail-greeting",
        format!("No such voicemail greeting: {g}"),
    )
}

pub fn parse_greeting(g: &str) -> Result<Greeting, ApiError> {
    Greeting::parse(g).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "invalid-voicemail-greeting",
            format!("Invalid voicemail greeting: {g} (unavailable, busy or name)"),
        )
    })
}

/// What was last seen of each mailbox (`(number, context)` → message id → message object).
#[derive(Default)]
pub struct Seen {
    mailboxes: Mutex<HashMap<(String, String), HashMap<String, Value>>>,
}

/// What changed in a mailbox since it was last seen.
#[derive(Debug, Default, PartialEq)]
struct Diff {
    created: Vec<Value>,
    updated: Vec<Value>,
    deleted: Vec<Value>,
}

impl Seen {
    /// Records `now` as the mailbox's content and tells what changed.
    fn update(&self, key: (String, String), now: HashMap<String, Value>) -> Diff {
        let Ok(mut all) = self.mailboxes.lock() else {
            return Diff::default();
        };
        // Only what changed is copied (into the events); the rest moves.
        let mut before = all.remove(&key).unwrap_or_default();
        let mut d = Diff::default();
        for (id, new) in &now {
            match before.remove(id) {
                None => d.created.push(new.clone()),
                Some(old) if old != *new => d.updated.push(new.clone()),
                Some(_) => {}
            }
        }
        d.deleted = before.into_values().collect();
        all.insert(key, now);
        for list in [&mut d.created, &mut d.updated, &mut d.deleted] {
            list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        }
        d
    }
}

fn contents(mb: &Mailbox) -> std::io::Result<HashMap<String, Value>> {
    Ok(mb
        .messages()?
        .into_iter()
        .map(|m| (m.info.id.clone(), m.to_json()))
        .collect())
}

impl CalldService {
    fn spool(&self) -> PathBuf {
        self.voicemail_dir.clone()
    }

    /// The mailbox the request names: another tenant's is missing (404).
    async fn voicemail_conf(&self, scope: &Scope, target: Target) -> Result<Conf, ApiError> {
        let conf = self
            .store
            .read(move |c| -> Result<Option<Conf>, ApiError> {
                let vm_id = match target {
                    Target::Id(id) => id,
                    Target::Me(user) => {
                        let Some(u) = docstore::get(c, crate::confd::users::TABLE, Key::Uuid(user))? else {
                            return Ok(None);
                        };
                        match crate::confd::users::voicemail::of_user(c, u.id)? {
                            Some(id) => id,
                            None => return Ok(None),
                        }
                    }
                };
                Ok(conf_of(c, vm_id)?)
            })
            .await?;
        match (conf, target) {
            (Some(c), Target::Id(_)) if scope.can_see(c.tenant) => Ok(c),
            (Some(c), Target::Me(_)) => Ok(c),
            (_, Target::Id(id)) => Err(error(
                StatusCode::NOT_FOUND,
                "no-such-voicemail",
                format!("No such voicemail: {id}"),
            )),
            (None, Target::Me(user)) => Err(error(
                StatusCode::NOT_FOUND,
                "no-such-user-voicemail",
                format!("No such user voicemail: {user}"),
            )),
        }
    }

    fn mailbox(&self, conf: &Conf) -> Result<Mailbox, ApiError> {
        Mailbox::new(&self.spool(), &conf.context, &conf.number).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid-voicemail",
                format!("Voicemail {} has no usable number and context", conf.id),
            )
        })
    }

    /// Runs spool work on a blocking thread.
    async fn on_spool<T: Send + 'static>(
        mb: Mailbox,
        f: impl FnOnce(&Mailbox) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        tokio::task::spawn_blocking(move || f(&mb))
            .await
            .map_err(|e| io_error(std::io::Error::other(e.to_string())))?
            .map_err(io_error)
    }

    /// `{id, name, number, folders: [{id, name, type, messages}]}`, newest messages first.
    pub async fn voicemail(&self, scope: &Scope, target: Target) -> Result<Value, ApiError> {
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        let folders = Self::on_spool(mb, |mb| {
            spool::FOLDERS
                .iter()
                .map(|f| Ok(folder_json(f, mb.folder_messages(f)?)))
                .collect::<std::io::Result<Vec<Value>>>()
        })
        .await?;
        Ok(json!({ "id": conf.id, "name": conf.name, "number": conf.number, "folders": folders }))
    }

    pub async fn voicemail_folder(&self, scope: &Scope, target: Target, folder: &str) -> Result<Value, ApiError> {
        let f = folder.parse().ok().and_then(Folder::by_id).ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "no-such-voicemail-folder",
                format!("No such voicemail folder: {folder}"),
            )
        })?;
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        Self::on_spool(mb, move |mb| Ok(folder_json(f, mb.folder_messages(f)?))).await
    }

    async fn message(&self, scope: &Scope, target: Target, id: &str) -> Result<(Conf, Mailbox, Message), ApiError> {
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        let wanted = id.to_owned();
        let m = Self::on_spool(mb.clone(), move |mb| mb.find(&wanted)).await?;
        let m = m.ok_or_else(|| no_message(id))?;
        Ok((conf, mb, m))
    }

    pub async fn voicemail_message(&self, scope: &Scope, target: Target, id: &str) -> Result<Value, ApiError> {
        Ok(self.message(scope, target, id).await?.2.to_json())
    }

    /// `PUT .../messages/{id}` with `{folder_id}`: moves the message.
    pub async fn move_voicemail_message(
        &self,
        scope: &Scope,
        target: Target,
        id: &str,
        body: serde_json::Map<String, Value>,
    ) -> Result<(), ApiError> {
        let folder = only_field(body, "folder_id")?;
        let dest = folder
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| ApiError::invalid_field("folder_id", "Not a valid integer."))?;
        let dest = Folder::by_id(dest).ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "no-such-voicemail-folder",
                format!("No such voicemail folder: {dest}"),
            )
        })?;
        let (conf, mb, m) = self.message(scope, target, id).await?;
        Self::on_spool(mb.clone(), move |mb| mb.move_message(&m, dest)).await?;
        self.voicemail_changed(&conf, mb).await;
        Ok(())
    }

    pub async fn delete_voicemail_message(&self, scope: &Scope, target: Target, id: &str) -> Result<(), ApiError> {
        let (conf, mb, m) = self.message(scope, target, id).await?;
        Self::on_spool(mb.clone(), move |mb| mb.delete_message(&m)).await?;
        self.voicemail_changed(&conf, mb).await;
        Ok(())
    }

    /// The message's audio; an unread message is read from then on (moved to `Old`, as
    /// listening on a phone does).
    pub async fn voicemail_recording(&self, scope: &Scope, target: Target, id: &str) -> Result<Vec<u8>, ApiError> {
        let (conf, mb, m) = self.message(scope, target, id).await?;
        let unread = m.folder.unread;
        let audio = Self::on_spool(mb.clone(), move |mb| {
            let audio = mb.recording(&m)?;
            if audio.is_some() && m.folder.unread {
                mb.move_message(&m, Folder::old())?;
            }
            Ok(audio)
        })
        .await?;
        let audio = audio.ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "no-such-voicemail-recording",
                format!("Voicemail message {id} has no WAV recording"),
            )
        })?;
        if unread {
            self.voicemail_changed(&conf, mb).await;
        }
        Ok(audio)
    }

    pub async fn voicemail_greeting(&self, scope: &Scope, target: Target, g: &str) -> Result<Vec<u8>, ApiError> {
        let greeting = parse_greeting(g)?;
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        Self::on_spool(mb, move |mb| mb.greeting(greeting))
            .await?
            .ok_or_else(|| no_greeting(g))
    }

    pub async fn has_voicemail_greeting(&self, scope: &Scope, target: Target, g: &str) -> Result<(), ApiError> {
        let greeting = parse_greeting(g)?;
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        if Self::on_spool(mb, move |mb| mb.has_greeting(greeting)).await? {
            Ok(())
        } else {
            Err(no_greeting(g))
        }
    }

    /// `POST` (create: 409 when it exists) or `PUT` (update: 404 when it does not) a
    /// greeting; the body must be a WAV file.
    pub async fn put_voicemail_greeting(
        &self,
        scope: &Scope,
        target: Target,
        g: &str,
        create: bool,
        data: bytes::Bytes,
    ) -> Result<(), ApiError> {
        let greeting = parse_greeting(g)?;
        if !spool::is_wav(&data) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid-voicemail-greeting",
                "A greeting must be a WAV file (RIFF/WAVE)".into(),
            ));
        }
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        let exists = Self::on_spool(mb.clone(), move |mb| mb.has_greeting(greeting)).await?;
        match (create, exists) {
            (true, true) => {
                return Err(error(
                    StatusCode::CONFLICT,
                    "voicemail-greeting-already-exists",
                    format!("Voicemail greeting already exists: {g}"),
                ))
            }
            (false, false) => return Err(no_greeting(g)),
            _ => {}
        }
        Self::on_spool(mb, move |mb| mb.put_greeting(greeting, &data)).await
    }

    pub async fn delete_voicemail_greeting(&self, scope: &Scope, target: Target, g: &str) -> Result<(), ApiError> {
        let greeting = parse_greeting(g)?;
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        if Self::on_spool(mb, move |mb| mb.delete_greeting(greeting)).await? {
            Ok(())
        } else {
            Err(no_greeting(g))
        }
    }

    /// `POST .../greetings/{g}/copy` with `{dest_greeting}`: creates or replaces it.
    pub async fn copy_voicemail_greeting(
        &self,
        scope: &Scope,
        target: Target,
        g: &str,
        body: serde_json::Map<String, Value>,
    ) -> Result<(), ApiError> {
        let dest = only_field(body, "dest_greeting")?;
        let dest = dest
            .as_str()
            .and_then(Greeting::parse)
            .ok_or_else(|| ApiError::invalid_field("dest_greeting", "Must be one of: unavailable, busy, name."))?;
        let source = parse_greeting(g)?;
        let conf = self.voicemail_conf(scope, target).await?;
        let mb = self.mailbox(&conf)?;
        // One spool job: the source is read and the copy written under the same look at
        // the mailbox (and its confd row read once).
        let copied = Self::on_spool(mb, move |mb| match mb.greeting(source)? {
            Some(data) => mb.put_greeting(dest, &data).map(|()| true),
            None => Ok(false),
        })
        .await?;
        if copied {
            Ok(())
        } else {
            Err(no_greeting(g))
        }
    }

    /// After a change made here: events for it, and Asterisk re-reads the mailbox (message
    /// lights); without AMI the events still go.
    async fn voicemail_changed(&self, conf: &Conf, mb: Mailbox) {
        self.publish_mailbox_diff(conf, mb).await;
        if let Some(ami) = self.ami.get() {
            let refresh = AmiMessage::new()
                .with("Action", "VoicemailRefresh")
                .with("Context", &conf.context)
                .with("Mailbox", &conf.number);
            if let Err(e) = ami.send(refresh).await {
                tracing::warn!(error = %e, mailbox = %conf.number, "VoicemailRefresh failed");
            }
        }
    }

    async fn publish_mailbox_diff(&self, conf: &Conf, mb: Mailbox) {
        let now = match Self::on_spool(mb, contents).await {
            Ok(now) => now,
            Err(_) => return,
        };
        let diff = self
            .voicemail_seen
            .update((conf.number.clone(), conf.context.clone()), now);
        for (name, key, list) in [
            (
                "user_voicemail_message_created",
                "voicemails.messages.created",
                &diff.created,
            ),
            (
                "user_voicemail_message_updated",
                "voicemails.messages.updated",
                &diff.updated,
            ),
            (
                "user_voicemail_message_deleted",
                "voicemails.messages.deleted",
                &diff.deleted,
            ),
        ] {
            for message in list {
                for user in &conf.users {
                    let data = json!({
                        "user_uuid": user,
                        "voicemail_id": conf.id,
                        "message_id": message["id"],
                        "message": message,
                    });
                    self.bus.publish(
                        EventSpec::new(name, key, data)
                            .acl(format!("events.users.{}.voicemails", escape_key(&user.to_string())))
                            .tenant(conf.tenant)
                            .users(vec![*user]),
                    );
                }
            }
        }
    }

    /// Asterisk said `number@context` changed (`MessageWaiting`).
    async fn mailbox_waiting(&self, mailbox: &str) {
        let Some((number, context)) = mailbox.split_once('@') else {
            return;
        };
        let (number, context) = (number.to_owned(), context.to_owned());
        let conf = self
            .store
            .read(move |c| -> Result<Option<Conf>, ApiError> {
                let row: Option<i64> = c
                    .query_row(
                        &format!(
                            "SELECT id FROM {} WHERE number = ?1 AND context = ?2",
                            voicemails::TABLE
                        ),
                        [&number, &context],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(match row {
                    Some(id) => conf_of(c, id)?,
                    None => None,
                })
            })
            .await;
        match conf {
            Ok(Some(conf)) => {
                if let Ok(mb) = self.mailbox(&conf) {
                    self.publish_mailbox_diff(&conf, mb).await;
                }
            }
            Ok(None) => tracing::debug!(mailbox, "MessageWaiting for a mailbox confd does not know"),
            Err(e) => tracing::warn!(error = %e, mailbox, "cannot read the voicemail"),
        }
    }

    /// Reads every provisioned mailbox once, so that messages already there are not
    /// announced as new by the first change.
    async fn prime_voicemails(&self) {
        let confs = self
            .store
            .read(|c| -> Result<Vec<(String, String)>, ApiError> {
                let mut stmt = c.prepare(&format!(
                    "SELECT json_extract(doc, '$.number'), json_extract(doc, '$.context') FROM {}",
                    voicemails::TABLE
                ))?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    ))
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap_or_default();
        for (number, context) in confs {
            let Some(mb) = Mailbox::new(&self.spool(), &context, &number) else {
                continue;
            };
            if let Ok(now) = Self::on_spool(mb, contents).await {
                self.voicemail_seen.update((number, context), now);
            }
        }
    }
}

/// The one field a body must have and nothing else.
fn only_field(mut body: serde_json::Map<String, Value>, field: &str) -> Result<Value, ApiError> {
    let v = body
        .remove(field)
        .ok_or_else(|| ApiError::invalid_field(field, "Missing data for required field."))?;
    match body.keys().next() {
        Some(k) => Err(ApiError::invalid_field(k, "Unknown field.")),
        None => Ok(v),
    }
}

/// A provisioned mailbox and its users.
fn conf_of(c: &rusqlite::Connection, id: i64) -> rusqlite::Result<Option<Conf>> {
    let Some(row) = docstore::get(c, voicemails::TABLE, Key::Id(id))? else {
        return Ok(None);
    };
    let users = voicemails::users_of(c, id)?
        .iter()
        .filter_map(|u| u["uuid"].as_str().and_then(|s| s.parse().ok()))
        .collect();
    let field = |k: &str| row.str(k).unwrap_or_default().to_owned();
    Ok(Some(Conf {
        id,
        name: field("name"),
        number: field("number"),
        context: field("context"),
        tenant: row.tenant_uuid,
        users,
    }))
}

fn folder_json(f: &'static Folder, mut messages: Vec<Message>) -> Value {
    messages.sort_by_key(|m| std::cmp::Reverse(m.info.timestamp));
    let mut v = f.to_json();
    v["messages"] = Value::Array(
        messages
            .iter()
            .map(|m| {
                let mut j = m.to_json();
                if let Some(o) = j.as_object_mut() {
                    o.remove("folder");
                }
                j
            })
            .collect(),
    );
    v
}

/// Follows Asterisk's `MessageWaiting` events until shutdown.
pub fn spawn_watcher(svc: Arc<CalldService>, ami: crate::ami::client::AmiClient, shutdown: CancellationToken) {
    let mut events = ami.subscribe();
    tokio::spawn(async move {
        svc.prime_voicemails().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                e = events.recv() => match e {
                    Ok(m) if m.get("Event") == Some("MessageWaiting") => {
                        if let Some(mailbox) = m.get("Mailbox") {
                            svc.mailbox_waiting(mailbox).await;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "voicemail watcher fell behind AMI events");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(items: &[(&str, &str)]) -> HashMap<String, Value> {
        items
            .iter()
            .map(|(id, folder)| (id.to_string(), json!({ "id": id, "folder": folder })))
            .collect()
    }

    #[test]
    fn seen_tells_what_changed_since_the_last_look() {
        let seen = Seen::default();
        let key = ("1000".to_string(), "default".to_string());
        let first = seen.update(key.clone(), msgs(&[("a", "INBOX"), ("b", "INBOX")]));
        assert_eq!(first.created.len(), 2);
        assert!(first.updated.is_empty() && first.deleted.is_empty());

        let d = seen.update(key.clone(), msgs(&[("b", "Old"), ("c", "INBOX")]));
        assert_eq!(d.created, vec![json!({"id": "c", "folder": "INBOX"})]);
        assert_eq!(d.updated, vec![json!({"id": "b", "folder": "Old"})]);
        assert_eq!(d.deleted, vec![json!({"id": "a", "folder": "INBOX"})]);

        // Nothing changed: nothing to tell; another mailbox is its own.
        assert_eq!(seen.update(key, msgs(&[("b", "Old"), ("c", "INBOX")])), Diff::default());
        let other = seen.update(("1001".into(), "default".into()), msgs(&[("b", "Old")]));
        assert_eq!(other.created.len(), 1);
    }
}
