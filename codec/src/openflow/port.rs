//! Ports: `ofp_port` (spec 1.3.5 §7.2.1), OFPT_PORT_STATUS (§7.4.3) and OFPT_PORT_MOD (§7.3.3).
//!
//! ```text
//! struct ofp_port {
//!     uint32_t port_no; uint8_t pad[4]; uint8_t hw_addr[6]; uint8_t pad2[2];
//!     char name[16]; uint32_t config; uint32_t state;
//!     uint32_t curr; uint32_t advertised; uint32_t supported; uint32_t peer;
//!     uint32_t curr_speed; uint32_t max_speed;
//! };  /* 64 bytes */
//! struct ofp_port_status { struct ofp_header header; uint8_t reason; uint8_t pad[7]; struct ofp_port desc; };
//! struct ofp_port_mod {
//!     struct ofp_header header; uint32_t port_no; uint8_t pad[4]; uint8_t hw_addr[6]; uint8_t pad2[2];
//!     uint32_t config; uint32_t mask; uint32_t advertise; uint8_t pad3[4];
//! };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::error::wire_enum;
use super::types::{MacAddr, PortNo};
use super::wire::{put_fixed_str, Reader};
use super::DecodeError;

/// Size of `ofp_port` on the wire.
pub const PORT_LEN: usize = 64;

/// `ofp_port_config` bit: the port is administratively down.
pub const PORT_CONFIG_DOWN: u32 = 1 << 0;
/// `ofp_port_state` bit: no physical link present.
pub const PORT_STATE_LINK_DOWN: u32 = 1 << 0;

/// A switch port as described in PORT_DESC replies and PORT_STATUS messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Port number.
    pub port_no: PortNo,
    /// Ethernet address of the port.
    pub hw_addr: MacAddr,
    /// Interface name (at most 15 bytes).
    pub name: String,
    /// `ofp_port_config` bits.
    pub config: u32,
    /// `ofp_port_state` bits.
    pub state: u32,
    /// Current features (`ofp_port_features`).
    pub curr: u32,
    /// Features advertised by the port.
    pub advertised: u32,
    /// Features supported by the port.
    pub supported: u32,
    /// Features advertised by the peer.
    pub peer: u32,
    /// Current bit rate in kbps.
    pub curr_speed: u32,
    /// Maximum bit rate in kbps.
    pub max_speed: u32,
}

impl Port {
    /// Parses one 64-byte `ofp_port`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port_no = PortNo(r.u32("port port_no")?);
        r.skip(4, "port pad")?;
        let hw_addr = MacAddr(r.array("port hw_addr")?);
        r.skip(2, "port pad2")?;
        let name = r.fixed_str(16, "port name")?;
        Ok(Port {
            port_no,
            hw_addr,
            name,
            config: r.u32("port config")?,
            state: r.u32("port state")?,
            curr: r.u32("port curr")?,
            advertised: r.u32("port advertised")?,
            supported: r.u32("port supported")?,
            peer: r.u32("port peer")?,
            curr_speed: r.u32("port curr_speed")?,
            max_speed: r.u32("port max_speed")?,
        })
    }

    /// Emits one 64-byte `ofp_port`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no.0);
        buf.put_bytes(0, 4);
        buf.put_slice(&self.hw_addr.0);
        buf.put_bytes(0, 2);
        put_fixed_str(buf, &self.name, 16);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            buf.put_u32(v);
        }
    }

    /// True when the port is administratively up and has link.
    pub fn is_live(&self) -> bool {
        self.config & PORT_CONFIG_DOWN == 0 && self.state & PORT_STATE_LINK_DOWN == 0
    }
}

wire_enum! {
    /// `ofp_port_reason`: why a PORT_STATUS was sent.
    PortReason: u8 {
        /// The port was added.
        Add = 0 => "ADD",
        /// The port was removed.
        Delete = 1 => "DELETE",
        /// Some attribute of the port changed.
        Modify = 2 => "MODIFY",
    }
}

/// OFPT_PORT_STATUS: a port was added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    /// Why.
    pub reason: PortReason,
    /// The port as it is now.
    pub desc: Port,
}

impl PortStatus {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let reason = PortReason::from(r.u8("port_status reason")?);
        r.skip(7, "port_status pad")?;
        let desc = Port::parse(r)?;
        Ok(PortStatus { reason, desc })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u8(self.reason.into());
        buf.put_bytes(0, 7);
        self.desc.emit(buf);
    }
}

/// OFPT_PORT_MOD: change a port's administrative configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMod {
    /// Port to change.
    pub port_no: PortNo,
    /// Must match the port's current address (a sanity check).
    pub hw_addr: MacAddr,
    /// New `ofp_port_config` bits.
    pub config: u32,
    /// Which config bits to change.
    pub mask: u32,
    /// Features to advertise; 0 leaves them unchanged.
    pub advertise: u32,
}

impl PortMod {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port_no = PortNo(r.u32("port_mod port_no")?);
        r.skip(4, "port_mod pad")?;
        let hw_addr = MacAddr(r.array("port_mod hw_addr")?);
        r.skip(2, "port_mod pad2")?;
        let config = r.u32("port_mod config")?;
        let mask = r.u32("port_mod mask")?;
        let advertise = r.u32("port_mod advertise")?;
        r.skip(4, "port_mod pad3")?;
        Ok(PortMod { port_no, hw_addr, config, mask, advertise })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no.0);
        buf.put_bytes(0, 4);
        buf.put_slice(&self.hw_addr.0);
        buf.put_bytes(0, 2);
        buf.put_u32(self.config);
        buf.put_u32(self.mask);
        buf.put_u32(self.advertise);
        buf.put_bytes(0, 4);
    }
}
