//! Queues: OFPT_QUEUE_GET_CONFIG_REQUEST / _REPLY (spec 1.3.5 §7.3.6, queue structures §7.2.2)
//! and the OFPMP_QUEUE statistics bodies (§7.3.5.8).
//!
//! ```text
//! struct ofp_queue_get_config_request { struct ofp_header header; uint32_t port; uint8_t pad[4]; };
//! struct ofp_queue_get_config_reply {
//!     struct ofp_header header; uint32_t port; uint8_t pad[4]; struct ofp_packet_queue queues[0];
//! };
//! struct ofp_packet_queue {
//!     uint32_t queue_id; uint32_t port; uint16_t len; uint8_t pad[6];
//!     struct ofp_queue_prop_header properties[0];
//! };  /* 16 bytes + properties */
//! struct ofp_queue_prop_header { uint16_t property; uint16_t len; uint8_t pad[4]; };
//! struct ofp_queue_prop_min_rate { /* header */ uint16_t rate; uint8_t pad[6]; };  /* 16; rate in 1/10 % */
//! struct ofp_queue_prop_max_rate { /* header */ uint16_t rate; uint8_t pad[6]; };  /* 16 */
//! struct ofp_queue_prop_experimenter { /* header */ uint32_t experimenter; uint8_t pad[4]; uint8_t data[0]; };
//! struct ofp_queue_stats_request { uint32_t port_no; uint32_t queue_id; };
//! struct ofp_queue_stats {
//!     uint32_t port_no; uint32_t queue_id; uint64_t tx_bytes; uint64_t tx_packets; uint64_t tx_errors;
//!     uint32_t duration_sec; uint32_t duration_nsec;
//! };  /* 40 bytes */
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::types::{PortNo, QueueId};
use super::wire::{LengthGuard, Reader};
use super::DecodeError;

/// Size of `ofp_packet_queue` without its properties.
const PACKET_QUEUE_LEN: usize = 16;
/// Size of a rate property, and of an experimenter property without its data.
const QUEUE_PROP_LEN: usize = 16;
/// `ofp_queue_properties`: minimum rate guaranteed.
const QT_MIN_RATE: u16 = 1;
/// `ofp_queue_properties`: maximum rate.
const QT_MAX_RATE: u16 = 2;
/// `ofp_queue_properties`: experimenter property.
const QT_EXPERIMENTER: u16 = 0xffff;

/// A rate above this value (in 1/10 of a percent) means the rate is disabled.
pub const QUEUE_RATE_DISABLED_ABOVE: u16 = 1000;

/// OFPT_QUEUE_GET_CONFIG_REQUEST: which queues does a port have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueGetConfigRequest {
    /// The port, or `PortNo::ANY` for every port.
    pub port: PortNo,
}

impl QueueGetConfigRequest {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port = PortNo(r.u32("queue_get_config_request port")?);
        r.skip(4, "queue_get_config_request pad")?;
        Ok(QueueGetConfigRequest { port })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port.0);
        buf.put_bytes(0, 4);
    }
}

/// OFPT_QUEUE_GET_CONFIG_REPLY: a port's queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueGetConfigReply {
    /// The port asked about.
    pub port: PortNo,
    /// Its queues.
    pub queues: Vec<PacketQueue>,
}

impl QueueGetConfigReply {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port = PortNo(r.u32("queue_get_config_reply port")?);
        r.skip(4, "queue_get_config_reply pad")?;
        let mut queues = Vec::new();
        while !r.is_empty() {
            queues.push(PacketQueue::parse(r)?);
        }
        Ok(QueueGetConfigReply { port, queues })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port.0);
        buf.put_bytes(0, 4);
        self.queues.iter().for_each(|q| q.emit(buf));
    }
}

/// One queue of a port (`ofp_packet_queue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacketQueue {
    /// The queue.
    pub queue_id: QueueId,
    /// The port it is attached to.
    pub port: PortNo,
    /// Its properties.
    pub properties: Vec<QueueProp>,
}

/// One queue property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum QueueProp {
    /// OFPQT_MIN_RATE: guaranteed rate, in 1/10 of a percent of the port rate.
    MinRate(u16),
    /// OFPQT_MAX_RATE: maximum rate, in 1/10 of a percent of the port rate.
    MaxRate(u16),
    /// OFPQT_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter-defined data.
        data: Vec<u8>,
    },
    /// A property this codec does not know, kept as bytes.
    Unknown {
        /// Property type.
        prop_type: u16,
        /// Bytes after the 8-byte property header.
        data: Vec<u8>,
    },
}

impl PacketQueue {
    /// Parses one `ofp_packet_queue`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let queue_id = QueueId(r.u32("packet_queue queue_id")?);
        let port = PortNo(r.u32("packet_queue port")?);
        let len = r.u16("packet_queue len")? as usize;
        let mut b = r.sub_to_len(start, len, PACKET_QUEUE_LEN, "packet_queue")?;
        b.skip(6, "packet_queue pad")?;
        let mut properties = Vec::new();
        while !b.is_empty() {
            properties.push(QueueProp::parse(&mut b)?);
        }
        Ok(PacketQueue { queue_id, port, properties })
    }

    /// Emits one `ofp_packet_queue`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 8);
        buf.put_u32(self.queue_id.0);
        buf.put_u32(self.port.0);
        buf.put_u16(0);
        buf.put_bytes(0, 6);
        self.properties.iter().for_each(|p| p.emit(buf));
        g.finish(buf);
    }
}

impl QueueProp {
    /// Parses one queue property.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let prop_type = r.u16("queue_prop property")?;
        let len = r.u16("queue_prop len")? as usize;
        let mut b = r.sub_to_len(start, len, 8, "queue_prop")?;
        b.skip(4, "queue_prop pad")?;
        let rate = |b: &mut Reader<'_>, what| {
            if len != QUEUE_PROP_LEN {
                return Err(DecodeError::BadLength { what: "queue_prop", offset: start, len });
            }
            let rate = b.u16(what)?;
            b.skip(6, "queue_prop rate pad")?;
            Ok(rate)
        };
        Ok(match prop_type {
            QT_MIN_RATE => QueueProp::MinRate(rate(&mut b, "queue_prop min_rate rate")?),
            QT_MAX_RATE => QueueProp::MaxRate(rate(&mut b, "queue_prop max_rate rate")?),
            QT_EXPERIMENTER => {
                let experimenter = b.u32("queue_prop experimenter")?;
                b.skip(4, "queue_prop experimenter pad")?;
                QueueProp::Experimenter { experimenter, data: b.rest().to_vec() }
            }
            _ => QueueProp::Unknown { prop_type, data: b.rest().to_vec() },
        })
    }

    /// Emits one queue property.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 2);
        let put_header = |buf: &mut BytesMut, t: u16| {
            buf.put_u16(t);
            buf.put_u16(0);
            buf.put_bytes(0, 4);
        };
        match self {
            QueueProp::MinRate(rate) | QueueProp::MaxRate(rate) => {
                let t =
                    if matches!(self, QueueProp::MinRate(_)) { QT_MIN_RATE } else { QT_MAX_RATE };
                put_header(buf, t);
                buf.put_u16(*rate);
                buf.put_bytes(0, 6);
            }
            QueueProp::Experimenter { experimenter, data } => {
                put_header(buf, QT_EXPERIMENTER);
                buf.put_u32(*experimenter);
                buf.put_bytes(0, 4);
                buf.put_slice(data);
            }
            QueueProp::Unknown { prop_type, data } => {
                put_header(buf, *prop_type);
                buf.put_slice(data);
            }
        }
        g.finish(buf);
    }
}

/// An OFPMP_QUEUE request (`ofp_queue_stats_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueueStatsRequest {
    /// The port, or `PortNo::ANY` for all ports.
    pub port_no: PortNo,
    /// The queue, or `QueueId::ALL` for all queues.
    pub queue_id: QueueId,
}

impl QueueStatsRequest {
    /// Parses an `ofp_queue_stats_request`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let port_no = PortNo(r.u32("queue_stats_request port_no")?);
        let queue_id = QueueId(r.u32("queue_stats_request queue_id")?);
        Ok(QueueStatsRequest { port_no, queue_id })
    }

    /// Emits an `ofp_queue_stats_request`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no.0);
        buf.put_u32(self.queue_id.0);
    }
}

/// Statistics of one queue in an OFPMP_QUEUE reply (`ofp_queue_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct QueueStats {
    /// The port.
    pub port_no: PortNo,
    /// The queue.
    pub queue_id: QueueId,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Packets dropped due to overrun.
    pub tx_errors: u64,
    /// Seconds the queue has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
}

impl QueueStats {
    /// Size on the wire.
    pub const LEN: usize = 40;

    /// Parses one `ofp_queue_stats`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(QueueStats {
            port_no: PortNo(r.u32("queue_stats port_no")?),
            queue_id: QueueId(r.u32("queue_stats queue_id")?),
            tx_bytes: r.u64("queue_stats tx_bytes")?,
            tx_packets: r.u64("queue_stats tx_packets")?,
            tx_errors: r.u64("queue_stats tx_errors")?,
            duration_sec: r.u32("queue_stats duration_sec")?,
            duration_nsec: r.u32("queue_stats duration_nsec")?,
        })
    }

    /// Emits one `ofp_queue_stats`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no.0);
        buf.put_u32(self.queue_id.0);
        buf.put_u64(self.tx_bytes);
        buf.put_u64(self.tx_packets);
        buf.put_u64(self.tx_errors);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for queue values.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// Any queue property; experimenter and unknown data are whole 8-byte words.
    pub(crate) fn prop() -> impl Strategy<Value = QueueProp> {
        let words =
            || vec(any::<u8>(), 0..3).prop_map(|w| w.iter().flat_map(|&b| [b; 8]).collect());
        prop_oneof![
            any::<u16>().prop_map(QueueProp::MinRate),
            any::<u16>().prop_map(QueueProp::MaxRate),
            (any::<u32>(), words())
                .prop_map(|(experimenter, data)| QueueProp::Experimenter { experimenter, data }),
            (3u16..0xffff, words())
                .prop_map(|(prop_type, data)| QueueProp::Unknown { prop_type, data }),
        ]
    }

    /// Any queue.
    pub(crate) fn packet_queue() -> impl Strategy<Value = PacketQueue> {
        (any::<(u32, u32)>(), vec(prop(), 0..4)).prop_map(|((q, p), properties)| PacketQueue {
            queue_id: QueueId(q),
            port: PortNo(p),
            properties,
        })
    }

    /// Any queue config reply.
    pub(crate) fn config_reply() -> impl Strategy<Value = QueueGetConfigReply> {
        (any::<u32>(), vec(packet_queue(), 0..4))
            .prop_map(|(p, queues)| QueueGetConfigReply { port: PortNo(p), queues })
    }

    /// Any queue statistics entry.
    pub(crate) fn queue_stats() -> impl Strategy<Value = QueueStats> {
        any::<(u32, u32, u64, u64, u64, u32, u32)>().prop_map(|(p, q, tb, tp, te, ds, dn)| {
            QueueStats {
                port_no: PortNo(p),
                queue_id: QueueId(q),
                tx_bytes: tb,
                tx_packets: tp,
                tx_errors: te,
                duration_sec: ds,
                duration_nsec: dn,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::error::test_util::{assert_truncations_fail, hex};
    use crate::openflow::{Message, OfpMessage, Xid};

    const REQUEST: &str = "0416 0010 00000003 00000001 00000000";
    /// Port 1 has queue 0 with min rate 50% and max rate 80%, and queue 1 with no properties.
    const REPLY: &str = "0417 0050 00000003 00000001 00000000
        00000000 00000001 0030 000000000000
            0001 0010 00000000 01f4 000000000000
            0002 0010 00000000 0320 000000000000
        00000001 00000001 0010 000000000000";

    fn reply() -> QueueGetConfigReply {
        QueueGetConfigReply {
            port: PortNo(1),
            queues: vec![
                PacketQueue {
                    queue_id: QueueId(0),
                    port: PortNo(1),
                    properties: vec![QueueProp::MinRate(500), QueueProp::MaxRate(800)],
                },
                PacketQueue { queue_id: QueueId(1), port: PortNo(1), properties: vec![] },
            ],
        }
    }

    #[test]
    fn request_parses_and_emits() {
        let r = QueueGetConfigRequest { port: PortNo(1) };
        assert_eq!(
            OfpMessage::parse(&hex(REQUEST)).unwrap().msg,
            Message::QueueGetConfigRequest(r)
        );
        assert_eq!(
            OfpMessage::new(Xid(3), Message::QueueGetConfigRequest(r)).to_vec(),
            hex(REQUEST)
        );
    }

    #[test]
    fn reply_parses_and_emits() {
        assert_eq!(
            OfpMessage::parse(&hex(REPLY)).unwrap().msg,
            Message::QueueGetConfigReply(reply())
        );
        assert_eq!(
            OfpMessage::new(Xid(3), Message::QueueGetConfigReply(reply())).to_vec(),
            hex(REPLY)
        );
    }

    #[test]
    fn truncations_fail() {
        assert_truncations_fail(&hex(REQUEST));
        assert_truncations_fail(&hex(REPLY));
    }

    #[test]
    fn rate_property_of_wrong_length_is_rejected() {
        let buf = hex("0001 0018 00000000 01f4 000000000000 0000000000000000");
        let err = QueueProp::parse(&mut Reader::new(&buf)).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "queue_prop", offset: 0, len: 24 });
    }

    proptest! {
        #[test]
        fn config_reply_round_trips(q in strategies::config_reply(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::QueueGetConfigReply(q));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }

        #[test]
        fn config_request_round_trips(port in any::<u32>(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::QueueGetConfigRequest(QueueGetConfigRequest { port: PortNo(port) }));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }
    }
}
