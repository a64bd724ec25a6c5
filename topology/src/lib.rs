//! The live topology graph: hypervisors, bridges, ports, VM interfaces and tunnels. Pure, no I/O.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
