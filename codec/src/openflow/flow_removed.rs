//! OFPT_FLOW_REMOVED (spec 1.3.5 §7.4.2): a flow entry left a table.
//!
//! ```text
//! struct ofp_flow_removed {
//!     struct ofp_header header;
//!     uint64_t cookie; uint16_t priority; uint8_t reason; uint8_t table_id;
//!     uint32_t duration_sec; uint32_t duration_nsec; uint16_t idle_timeout; uint16_t hard_timeout;
//!     uint64_t packet_count; uint64_t byte_count;
//!     struct ofp_match match;            /* variable, padded to 8 */
//! };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::error::wire_enum;
use super::oxm::Match;
use super::types::{Cookie, TableId};
use super::wire::Reader;
use super::DecodeError;

wire_enum! {
    /// `ofp_flow_removed_reason`.
    FlowRemovedReason: u8 {
        /// Flow idle time exceeded `idle_timeout`.
        IdleTimeout = 0 => "idle",
        /// Time exceeded `hard_timeout`.
        HardTimeout = 1 => "hard",
        /// Evicted by a DELETE flow mod.
        Delete = 2 => "delete",
        /// Group was removed.
        GroupDelete = 3 => "group_delete",
        /// Meter was removed (OpenFlow 1.4, sent by OVS).
        MeterDelete = 4 => "meter_delete",
        /// Switch evicted the flow to make room (OpenFlow 1.4, sent by OVS).
        Eviction = 5 => "eviction",
    }
}

/// OFPT_FLOW_REMOVED: sent for flows installed with `FLOW_MOD_SEND_FLOW_REM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRemoved {
    /// The flow's cookie.
    pub cookie: Cookie,
    /// The flow's priority.
    pub priority: u16,
    /// Why it was removed.
    pub reason: FlowRemovedReason,
    /// Table it was in.
    pub table_id: TableId,
    /// Seconds the flow was alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// The flow's idle timeout.
    pub idle_timeout: u16,
    /// The flow's hard timeout.
    pub hard_timeout: u16,
    /// Packets it matched.
    pub packet_count: u64,
    /// Bytes it matched.
    pub byte_count: u64,
    /// Its match.
    pub matches: Match,
}

impl FlowRemoved {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FlowRemoved {
            cookie: Cookie(r.u64("flow_removed cookie")?),
            priority: r.u16("flow_removed priority")?,
            reason: FlowRemovedReason::from(r.u8("flow_removed reason")?),
            table_id: TableId(r.u8("flow_removed table_id")?),
            duration_sec: r.u32("flow_removed duration_sec")?,
            duration_nsec: r.u32("flow_removed duration_nsec")?,
            idle_timeout: r.u16("flow_removed idle_timeout")?,
            hard_timeout: r.u16("flow_removed hard_timeout")?,
            packet_count: r.u64("flow_removed packet_count")?,
            byte_count: r.u64("flow_removed byte_count")?,
            matches: Match::parse(r)?,
        })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u64(self.cookie.0);
        buf.put_u16(self.priority);
        buf.put_u8(self.reason.into());
        buf.put_u8(self.table_id.0);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.matches.emit(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::action::tests::hex;
    use crate::openflow::oxm::OxmField;
    use crate::openflow::types::{PortNo, Xid};
    use crate::openflow::{Message, OfpMessage};

    const SAMPLE: &str = "040b 0048 00000007 \
        00000000000000aa 0064 00 01 0000000a 00000005 001e 0000 \
        0000000000000003 00000000000000c6 \
        0001 0012 80000004 00000001 80000a02 0800 000000000000";

    fn sample() -> FlowRemoved {
        FlowRemoved {
            cookie: Cookie(0xaa),
            priority: 100,
            reason: FlowRemovedReason::IdleTimeout,
            table_id: TableId(1),
            duration_sec: 10,
            duration_nsec: 5,
            idle_timeout: 30,
            hard_timeout: 0,
            packet_count: 3,
            byte_count: 198,
            matches: Match::new(vec![OxmField::InPort(PortNo(1)), OxmField::EthType(0x0800)]),
        }
    }

    #[test]
    fn sample_parses_and_emits() {
        let b = hex(SAMPLE);
        let m = OfpMessage::parse(&b).unwrap();
        assert_eq!(m.xid, Xid(7));
        assert_eq!(m.msg, Message::FlowRemoved(sample().into()));
        assert_eq!(OfpMessage::new(Xid(7), Message::FlowRemoved(sample().into())).to_vec(), b);
    }

    #[test]
    fn every_truncation_errors() {
        let b = hex(SAMPLE);
        for n in 8..b.len() {
            assert!(FlowRemoved::parse(&mut Reader::new(&b[8..n])).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn unknown_reason_survives() {
        let mut f = sample();
        f.reason = FlowRemovedReason::from(9);
        let mut b = BytesMut::new();
        f.emit(&mut b);
        assert_eq!(FlowRemoved::parse(&mut Reader::new(&b)).unwrap(), f);
    }
}
