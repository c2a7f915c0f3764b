//! accentd: one process that replaces the Accent platform daemons next to Asterisk.

pub mod ami;
