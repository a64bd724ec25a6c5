//! Groups: OFPT_GROUP_MOD (spec 1.3.5 §7.3.4.2) and the group multipart bodies (§7.3.5.10-12):
//! group statistics, group descriptions and group features.
//!
//! ```text
//! struct ofp_group_mod {
//!     struct ofp_header header;
//!     uint16_t command; uint8_t type; uint8_t pad; uint32_t group_id;
//!     struct ofp_bucket buckets[0];
//! };
//! struct ofp_bucket {
//!     uint16_t len; uint16_t weight; uint32_t watch_port; uint32_t watch_group; uint8_t pad[4];
//!     struct ofp_action_header actions[0];
//! };  /* 16 bytes + actions */
//! struct ofp_group_stats_request { uint32_t group_id; uint8_t pad[4]; };
//! struct ofp_group_stats {
//!     uint16_t length; uint8_t pad[2]; uint32_t group_id; uint32_t ref_count; uint8_t pad2[4];
//!     uint64_t packet_count; uint64_t byte_count; uint32_t duration_sec; uint32_t duration_nsec;
//!     struct ofp_bucket_counter bucket_stats[0];   /* { uint64_t packet_count; uint64_t byte_count; } */
//! };  /* 40 bytes + 16 per bucket */
//! struct ofp_group_desc { uint16_t length; uint8_t type; uint8_t pad; uint32_t group_id; struct ofp_bucket buckets[0]; };
//! struct ofp_group_features {
//!     uint32_t types; uint32_t capabilities; uint32_t max_groups[4]; uint32_t actions[4];
//! };  /* 40 bytes */
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::action::Action;
use super::error::wire_enum;
use super::types::{GroupId, PortNo};
use super::wire::{LengthGuard, Reader};
use super::DecodeError;

/// Size of `ofp_bucket` without its actions.
const BUCKET_LEN: usize = 16;
/// Size of `ofp_group_stats` without its bucket counters.
const GROUP_STATS_LEN: usize = 40;
/// Size of `ofp_group_desc` without its buckets.
const GROUP_DESC_LEN: usize = 8;
/// Size of `ofp_bucket_counter`.
const BUCKET_COUNTER_LEN: usize = 16;

wire_enum! {
    /// `ofp_group_mod_command`.
    GroupModCommand: u16 {
        /// New group.
        Add = 0 => "ADD",
        /// Modify all matching groups.
        Modify = 1 => "MOD",
        /// Delete all matching groups.
        Delete = 2 => "DEL",
    }
}

wire_enum! {
    /// `ofp_group_type`.
    GroupType: u8 {
        /// All (multicast/broadcast) group: every bucket is executed.
        All = 0 => "all",
        /// Select group: one bucket is executed, chosen by the switch (weighted).
        Select = 1 => "select",
        /// Indirect group: the single bucket is executed.
        Indirect = 2 => "indirect",
        /// Fast failover group: the first live bucket is executed.
        FastFailover = 3 => "ff",
    }
}

/// `ofp_group_capabilities` bit: support weight for select groups.
pub const GROUP_CAP_SELECT_WEIGHT: u32 = 1 << 0;
/// `ofp_group_capabilities` bit: support liveness for select groups.
pub const GROUP_CAP_SELECT_LIVENESS: u32 = 1 << 1;
/// `ofp_group_capabilities` bit: support chaining groups.
pub const GROUP_CAP_CHAINING: u32 = 1 << 2;
/// `ofp_group_capabilities` bit: check chaining for loops and delete.
pub const GROUP_CAP_CHAINING_CHECKS: u32 = 1 << 3;

/// One action bucket of a group (`ofp_bucket`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Relative weight, for select groups only (0 otherwise).
    pub weight: u16,
    /// Port whose liveness decides whether the bucket is live (fast failover); `ANY` if none.
    pub watch_port: PortNo,
    /// Group whose liveness decides whether the bucket is live (fast failover); `ANY` if none.
    pub watch_group: GroupId,
    /// The actions to execute.
    pub actions: Vec<Action>,
}

impl Bucket {
    /// A bucket that only carries actions: weight 0, no watch port or group.
    pub fn with_actions(actions: Vec<Action>) -> Self {
        Bucket { weight: 0, watch_port: PortNo::ANY, watch_group: GroupId::ANY, actions }
    }

    /// Parses one `ofp_bucket`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.u16("bucket len")? as usize;
        let mut b = r.sub_to_len(start, len, BUCKET_LEN, "bucket")?;
        let weight = b.u16("bucket weight")?;
        let watch_port = PortNo(b.u32("bucket watch_port")?);
        let watch_group = GroupId(b.u32("bucket watch_group")?);
        b.skip(4, "bucket pad")?;
        let actions = Action::parse_list(&mut b)?;
        Ok(Bucket { weight, watch_port, watch_group, actions })
    }

    /// Emits one `ofp_bucket`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 0);
        buf.put_u16(0);
        buf.put_u16(self.weight);
        buf.put_u32(self.watch_port.0);
        buf.put_u32(self.watch_group.0);
        buf.put_bytes(0, 4);
        Action::emit_list(&self.actions, buf);
        g.finish(buf);
    }

    /// Parses buckets until the reader is exhausted.
    pub fn parse_list(r: &mut Reader<'_>) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Bucket::parse(r)?);
        }
        Ok(out)
    }

    /// Emits a list of buckets.
    pub fn emit_list(buckets: &[Bucket], buf: &mut BytesMut) {
        buckets.iter().for_each(|b| b.emit(buf));
    }
}

/// OFPT_GROUP_MOD: add, change or delete a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupMod {
    /// What to do.
    pub command: GroupModCommand,
    /// The kind of group.
    pub group_type: GroupType,
    /// The group; `GroupId::ALL` with `Delete` removes every group.
    pub group_id: GroupId,
    /// The buckets (empty for a delete).
    pub buckets: Vec<Bucket>,
}

impl GroupMod {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let command = GroupModCommand::from(r.u16("group_mod command")?);
        let group_type = GroupType::from(r.u8("group_mod type")?);
        r.skip(1, "group_mod pad")?;
        let group_id = GroupId(r.u32("group_mod group_id")?);
        let buckets = Bucket::parse_list(r)?;
        Ok(GroupMod { command, group_type, group_id, buckets })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.command.into());
        buf.put_u8(self.group_type.into());
        buf.put_u8(0);
        buf.put_u32(self.group_id.0);
        Bucket::emit_list(&self.buckets, buf);
    }
}

/// Packet and byte counters of one bucket (`ofp_bucket_counter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct BucketCounter {
    /// Packets processed by the bucket.
    pub packet_count: u64,
    /// Bytes processed by the bucket.
    pub byte_count: u64,
}

/// Statistics of one group in an OFPMP_GROUP reply (`ofp_group_stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct GroupStats {
    /// The group.
    pub group_id: GroupId,
    /// Flows or groups that forward to this group.
    pub ref_count: u32,
    /// Packets processed by the group.
    pub packet_count: u64,
    /// Bytes processed by the group.
    pub byte_count: u64,
    /// Seconds the group has been alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond `duration_sec`.
    pub duration_nsec: u32,
    /// One counter per bucket, in bucket order.
    pub bucket_stats: Vec<BucketCounter>,
}

impl GroupStats {
    /// Parses one `ofp_group_stats`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.u16("group_stats length")? as usize;
        let mut b = r.sub_to_len(start, len, GROUP_STATS_LEN, "group_stats")?;
        if (len - GROUP_STATS_LEN) % BUCKET_COUNTER_LEN != 0 {
            return Err(DecodeError::BadLength { what: "group_stats", offset: start, len });
        }
        b.skip(2, "group_stats pad")?;
        let group_id = GroupId(b.u32("group_stats group_id")?);
        let ref_count = b.u32("group_stats ref_count")?;
        b.skip(4, "group_stats pad2")?;
        let packet_count = b.u64("group_stats packet_count")?;
        let byte_count = b.u64("group_stats byte_count")?;
        let duration_sec = b.u32("group_stats duration_sec")?;
        let duration_nsec = b.u32("group_stats duration_nsec")?;
        let mut bucket_stats = Vec::with_capacity(b.remaining() / BUCKET_COUNTER_LEN);
        while !b.is_empty() {
            bucket_stats.push(BucketCounter {
                packet_count: b.u64("bucket_counter packet_count")?,
                byte_count: b.u64("bucket_counter byte_count")?,
            });
        }
        Ok(GroupStats {
            group_id,
            ref_count,
            packet_count,
            byte_count,
            duration_sec,
            duration_nsec,
            bucket_stats,
        })
    }

    /// Emits one `ofp_group_stats`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 0);
        buf.put_u16(0);
        buf.put_bytes(0, 2);
        buf.put_u32(self.group_id.0);
        buf.put_u32(self.ref_count);
        buf.put_bytes(0, 4);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        for c in &self.bucket_stats {
            buf.put_u64(c.packet_count);
            buf.put_u64(c.byte_count);
        }
        g.finish(buf);
    }
}

/// One group in an OFPMP_GROUP_DESC reply (`ofp_group_desc`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDesc {
    /// The kind of group.
    pub group_type: GroupType,
    /// The group.
    pub group_id: GroupId,
    /// Its buckets.
    pub buckets: Vec<Bucket>,
}

impl GroupDesc {
    /// Parses one `ofp_group_desc`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.u16("group_desc length")? as usize;
        let mut b = r.sub_to_len(start, len, GROUP_DESC_LEN, "group_desc")?;
        let group_type = GroupType::from(b.u8("group_desc type")?);
        b.skip(1, "group_desc pad")?;
        let group_id = GroupId(b.u32("group_desc group_id")?);
        let buckets = Bucket::parse_list(&mut b)?;
        Ok(GroupDesc { group_type, group_id, buckets })
    }

    /// Emits one `ofp_group_desc`.
    pub fn emit(&self, buf: &mut BytesMut) {
        let g = LengthGuard::start(buf, 0);
        buf.put_u16(0);
        buf.put_u8(self.group_type.into());
        buf.put_u8(0);
        buf.put_u32(self.group_id.0);
        Bucket::emit_list(&self.buckets, buf);
        g.finish(buf);
    }
}

/// The switch's group capabilities, the OFPMP_GROUP_FEATURES reply (`ofp_group_features`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct GroupFeatures {
    /// Bitmap of supported group types (bit `1 << GroupType`).
    pub types: u32,
    /// Bitmap of `GROUP_CAP_*` capabilities.
    pub capabilities: u32,
    /// Maximum number of groups, per group type (all, select, indirect, ff).
    pub max_groups: [u32; 4],
    /// Bitmaps of supported action types (bit `1 << OFPAT_*`), per group type.
    pub actions: [u32; 4],
}

impl GroupFeatures {
    /// Parses an `ofp_group_features`.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let types = r.u32("group_features types")?;
        let capabilities = r.u32("group_features capabilities")?;
        let mut max_groups = [0u32; 4];
        for m in &mut max_groups {
            *m = r.u32("group_features max_groups")?;
        }
        let mut actions = [0u32; 4];
        for a in &mut actions {
            *a = r.u32("group_features actions")?;
        }
        Ok(GroupFeatures { types, capabilities, max_groups, actions })
    }

    /// Emits an `ofp_group_features`.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.types);
        buf.put_u32(self.capabilities);
        self.max_groups.iter().for_each(|&m| buf.put_u32(m));
        self.actions.iter().for_each(|&a| buf.put_u32(a));
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for group values.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// An action that the action codec round-trips whatever its state of completion.
    pub(crate) fn action() -> impl Strategy<Value = Action> {
        (any::<u32>(), any::<u16>())
            .prop_map(|(p, m)| Action::Output { port: PortNo(p), max_len: m })
    }

    /// Any bucket with up to three output actions.
    pub(crate) fn bucket() -> impl Strategy<Value = Bucket> {
        (any::<u16>(), any::<u32>(), any::<u32>(), vec(action(), 0..3)).prop_map(
            |(weight, wp, wg, actions)| Bucket {
                weight,
                watch_port: PortNo(wp),
                watch_group: GroupId(wg),
                actions,
            },
        )
    }

    /// Any group type, known or not.
    pub(crate) fn group_type() -> impl Strategy<Value = GroupType> {
        any::<u8>().prop_map(GroupType::from)
    }

    /// Any group mod.
    pub(crate) fn group_mod() -> impl Strategy<Value = GroupMod> {
        (any::<u16>(), group_type(), any::<u32>(), vec(bucket(), 0..4)).prop_map(
            |(c, group_type, id, buckets)| GroupMod {
                command: GroupModCommand::from(c),
                group_type,
                group_id: GroupId(id),
                buckets,
            },
        )
    }

    /// Any group statistics entry.
    pub(crate) fn group_stats() -> impl Strategy<Value = GroupStats> {
        (
            any::<(u32, u32, u64, u64, u32, u32)>(),
            vec(
                any::<(u64, u64)>()
                    .prop_map(|(p, b)| BucketCounter { packet_count: p, byte_count: b }),
                0..4,
            ),
        )
            .prop_map(|((id, rc, pc, bc, ds, dn), bucket_stats)| GroupStats {
                group_id: GroupId(id),
                ref_count: rc,
                packet_count: pc,
                byte_count: bc,
                duration_sec: ds,
                duration_nsec: dn,
                bucket_stats,
            })
    }

    /// Any group description.
    pub(crate) fn group_desc() -> impl Strategy<Value = GroupDesc> {
        (group_type(), any::<u32>(), vec(bucket(), 0..3)).prop_map(|(group_type, id, buckets)| {
            GroupDesc { group_type, group_id: GroupId(id), buckets }
        })
    }

    /// Any group features.
    pub(crate) fn group_features() -> impl Strategy<Value = GroupFeatures> {
        (any::<(u32, u32)>(), any::<[u32; 4]>(), any::<[u32; 4]>()).prop_map(
            |((types, capabilities), max_groups, actions)| GroupFeatures {
                types,
                capabilities,
                max_groups,
                actions,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::openflow::error::test_util::{assert_truncations_fail, hex};
    use crate::openflow::{Message, OfpMessage, Xid};

    /// ADD group 1, select, one bucket of weight 100 that outputs to port 1.
    const GROUP_MOD: &str = "040f 0030 00000001 0000 01 00 00000001
        0020 0064 ffffffff ffffffff 00000000  0000 0010 00000001 ffff 000000000000";

    #[test]
    fn group_mod_parses() {
        let m = OfpMessage::parse(&hex(GROUP_MOD)).unwrap();
        let Message::GroupMod(g) = &m.msg else { panic!("not a group mod: {m:?}") };
        assert_eq!(g.command, GroupModCommand::Add);
        assert_eq!(g.group_type, GroupType::Select);
        assert_eq!(g.group_id, GroupId(1));
        assert_eq!(g.buckets.len(), 1);
        assert_eq!(g.buckets[0].weight, 100);
        assert_eq!(g.buckets[0].watch_port, PortNo::ANY);
        assert_eq!(g.buckets[0].actions, vec![Action::output(PortNo(1))]);
    }

    #[test]
    fn group_mod_emits() {
        let g = GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::Select,
            group_id: GroupId(1),
            buckets: vec![Bucket {
                weight: 100,
                ..Bucket::with_actions(vec![Action::output(PortNo(1))])
            }],
        };
        assert_eq!(OfpMessage::new(Xid(1), Message::GroupMod(g)).to_vec(), hex(GROUP_MOD));
    }

    #[test]
    fn group_mod_truncations_fail() {
        assert_truncations_fail(&hex(GROUP_MOD));
    }

    #[test]
    fn bucket_shorter_than_its_header_is_rejected() {
        let mut b = hex(GROUP_MOD);
        b[17] = 8; // bucket len 8 < 16
        let err = OfpMessage::parse(&b).unwrap_err();
        assert_eq!(err, DecodeError::BadLength { what: "bucket", offset: 16, len: 8 });
    }

    #[test]
    fn group_stats_with_partial_bucket_counter_is_rejected() {
        let mut buf = BytesMut::new();
        GroupStats { bucket_stats: vec![BucketCounter::default()], ..Default::default() }
            .emit(&mut buf);
        buf[1] -= 8;
        let err = GroupStats::parse(&mut Reader::new(&buf[..48])).unwrap_err();
        assert!(
            matches!(err, DecodeError::BadLength { what: "group_stats", len: 48, .. }),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn group_mod_round_trips(g in strategies::group_mod(), xid in any::<u32>()) {
            let m = OfpMessage::new(Xid(xid), Message::GroupMod(g));
            prop_assert_eq!(OfpMessage::parse(&m.to_vec()).unwrap(), m);
        }
    }
}
