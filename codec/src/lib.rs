//! Wire formats spoken by periscope, as plain data.
//!
//! `openflow` holds OpenFlow 1.3 (spec 1.3.5) with the Nicira and ONF extensions Open vSwitch
//! implements; `ovsdb` holds the OVSDB management protocol (RFC 7047) with Open vSwitch's
//! extensions. Nothing here does I/O: every value is parsed from bytes and emitted into a buffer.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod openflow;
pub mod ovsdb;
