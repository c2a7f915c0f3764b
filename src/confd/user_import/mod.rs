//! Users CSV import and export (`POST /users/import`, `GET /users/export`), upstream's
//! format: one row per user with its auth credentials, line, SIP endpoint, extension,
//! voicemail and incall.

pub mod row;
