//! OFPT_GET_ASYNC_REPLY / OFPT_SET_ASYNC (spec 1.3.5 §7.3.10): which asynchronous messages a
//! connection receives, per role.
//!
//! ```text
//! struct ofp_async_config {
//!     struct ofp_header header;
//!     uint32_t packet_in_mask[2];     /* Bitmasks of OFPR_* values. */
//!     uint32_t port_status_mask[2];   /* Bitmasks of OFPPR_* values. */
//!     uint32_t flow_removed_mask[2];  /* Bitmasks of OFPRR_* values. */
//! };  /* element 0: master or equal role; element 1: slave role */
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::wire::Reader;
use super::DecodeError;

/// One mask per role: bit `1 << reason` set means messages with that reason are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct RoleMasks {
    /// Mask for a connection in the master or equal role.
    pub master: u32,
    /// Mask for a connection in the slave role.
    pub slave: u32,
}

impl RoleMasks {
    fn parse(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        Ok(RoleMasks { master: r.u32(what)?, slave: r.u32(what)? })
    }

    fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.master);
        buf.put_u32(self.slave);
    }
}

/// The asynchronous message filter of a connection (`ofp_async_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct AsyncConfig {
    /// Packet-in reasons (`OFPR_*`) sent.
    pub packet_in_mask: RoleMasks,
    /// Port status reasons (`OFPPR_*`) sent.
    pub port_status_mask: RoleMasks,
    /// Flow removed reasons (`OFPRR_*`) sent.
    pub flow_removed_mask: RoleMasks,
}

impl AsyncConfig {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AsyncConfig {
            packet_in_mask: RoleMasks::parse(r, "async_config packet_in_mask")?,
            port_status_mask: RoleMasks::parse(r, "async_config port_status_mask")?,
            flow_removed_mask: RoleMasks::parse(r, "async_config flow_removed_mask")?,
        })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        self.packet_in_mask.emit(buf);
        self.port_status_mask.emit(buf);
        self.flow_removed_mask.emit(buf);
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for async config values.

    use proptest::prelude::*;

    use super::*;

    /// Any async config.
    pub(crate) fn async_config() -> impl Strategy<Value = AsyncConfig> {
        any::<[u32; 6]>().prop_map(|m| AsyncConfig {
            packet_in_mask: RoleMasks { master: m[0], slave: m[1] },
            port_status_mask: RoleMasks { master: m[2], slave: m[3] },
            flow_removed_mask: RoleMasks { master: m[4], slave: m[5] },
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::error::test_util::{assert_truncations_fail, hex};
    use crate::openflow::{Message, OfpMessage, Xid};

    /// Master gets no-match and action packet-ins, every port status and every flow-removed
    /// reason; slave gets only port status.
    const SET_ASYNC: &str =
        "041c 0020 00000004 00000003 00000000 00000007 00000007 0000000f 00000000";

    fn sample() -> AsyncConfig {
        AsyncConfig {
            packet_in_mask: RoleMasks { master: 3, slave: 0 },
            port_status_mask: RoleMasks { master: 7, slave: 7 },
            flow_removed_mask: RoleMasks { master: 0xf, slave: 0 },
        }
    }

    #[test]
    fn set_async_parses_and_emits() {
        assert_eq!(OfpMessage::parse(&hex(SET_ASYNC)).unwrap().msg, Message::SetAsync(sample()));
        assert_eq!(OfpMessage::new(Xid(4), Message::SetAsync(sample())).to_vec(), hex(SET_ASYNC));
        let mut reply = hex(SET_ASYNC);
        reply[1] = 27;
        assert_eq!(OfpMessage::parse(&reply).unwrap().msg, Message::GetAsyncReply(sample()));
    }

    #[test]
    fn set_async_truncations_fail() {
        assert_truncations_fail(&hex(SET_ASYNC));
    }

    proptest! {
        #[test]
        fn async_config_round_trips(a in strategies::async_config(), xid in any::<u32>(), set in any::<bool>()) {
            let msg = if set { Message::SetAsync(a) } else { Message::GetAsyncReply(a) };
            let m = OfpMessage::new(Xid(xid), msg);
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }
    }
}
