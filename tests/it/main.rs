//! All integration tests in one binary: each file below was its own test
//! binary, and linking the whole crate ~40 times filled the CI disk and
//! spent minutes linking.

mod ami_client;
mod ami_frames;
mod ami_fuzz_corpus;
mod ami_status;
mod ari_client;
mod ari_events;
mod ari_fixtures;
mod ari_rest;
mod auth_acl_matrix;
mod auth_bad_input;
mod auth_groups;
mod auth_policies;
mod auth_smoke;
mod auth_tenants;
mod auth_tokens;
mod auth_users;
mod calld_applications;
mod calld_calls;
mod calld_conferences;
mod calld_parking;
mod calld_stasis;
mod calld_voicemails;
mod calllog_api;
mod calllog_cli;
mod calllog_live;
mod calllog_media;
mod cel_generate;
mod cel_sources;
mod cli;
mod common;
mod confd_applications;
mod confd_conferences;
mod confd_core;
mod confd_lines;
mod confd_parkinglots;
mod confd_render;
mod confd_routing;
mod confd_user_import;
mod confd_user_lines;
mod confd_users;
mod control_feed;
mod control_state;
mod openapi_auth;
mod tls;
