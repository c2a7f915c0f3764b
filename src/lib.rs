//! accentd: one process that replaces the Accent platform daemons
//! (accent-auth, accent-confd, accent-calld, accent-call-logd, accent-chatd,
//! the websocket) next to Asterisk.
//!
//! A tour of the modules:
//! - [`config`]: the settings (file + environment).
//! - [`store`]: the embedded SQLite store (writer thread, migrations).
//! - [`bus`]: the in-process event bus and its upstream-shaped envelope.
//! - [`auth`]: tenants, users, groups, policies, tokens, the ACL engine and
//!   the warp filter every protected route uses.
//! - [`api`]: the HTTP server, error mapping, shared request helpers.
//! - [`ami`]: the Asterisk Manager Interface: wire framing (nom), the client (actor + handle).
//! - [`ari`]: the Asterisk REST Interface: typed models and events, the REST
//!   client and the events websocket client.
//! - [`fake_asterisk`]: a fake Asterisk replaying the recorded sessions (tests, demos).
//! - [`cel`]: CEL rows (the input of call logs): the record, a reader per source (AMI, cel_custom
//!   CSV/JSON, cel_sqlite3_custom, SQL dumps) and the `cel` table.
//! - [`control`]: the live state of the PBX (channels, bridges, calls, device states) built
//!   from the AMI and ARI events, with a change stream.
//! - [`calllog`]: call-logd: call logs from CEL and the `/api/call-logd/1.0` API.
//! - [`confd`]: provisioning (`/api/confd/1.1`): the resources, their validation and the
//!   Asterisk reloads their changes need.
//! - [`chat`]: chatd's rooms and messages (`/api/chatd/1.0/users/me/rooms...`).
//! - [`app`]: wiring of all of the above.

pub mod ami;
pub mod api;
pub mod app;
pub mod ari;
pub mod auth;
pub mod bus;
pub mod calld;
pub mod calllog;
pub mod cel;
pub mod chat;
pub mod confd;
pub mod config;
pub mod control;
pub mod fake_asterisk;
pub mod mail;
pub mod store;
pub mod time;
pub mod websocketd;
