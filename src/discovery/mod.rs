//! Link discovery between switches with LLDP: periscope sends a probe out of every port and
//! learns a link from the PACKET_IN of that probe on the far side. Pure: the controller core
//! does the sending and the receiving.

pub mod lldp;
pub mod prober;

pub use lldp::{LldpError, Probe};
pub use prober::{probed_ports, ProbeOut, ProbedPorts, Prober, ProberConfig};
