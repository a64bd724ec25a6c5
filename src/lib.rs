//! periscope: an OpenFlow 1.3 / OVSDB controller that keeps tenant traffic mirrors attached to
//! their VMs across live migration.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use periscope_codec as codec;
pub use periscope_topology as topology;

pub mod bench;
pub mod cli;
pub mod collector;
pub mod controller;
pub mod demo;
pub mod discovery;
pub mod fuzz;
pub mod lab;
pub mod log;
pub mod northbound;
pub mod ofprint;
pub mod openflow;
pub mod ovsdb;
pub mod policy;
pub mod reconcile;
pub mod scenario;
pub mod shell;
pub mod tls;
