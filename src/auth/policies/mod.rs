//! `/policies`: named ACL lists.

pub mod store;
