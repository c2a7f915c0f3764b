pub mod acl;
