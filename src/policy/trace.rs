//! A model of an OpenFlow pipeline that answers "where does this packet go": it runs a packet
//! through flows (ours, read back from a switch, or desired) the way Open vSwitch would, and
//! reports every output with the packet as it left. Policy tests assert on this instead of on
//! lists of flows (Faucet's `FakeOFTable`), and the debug shell's `trace` uses it.
//!
//! Modelled: priority lookup per table with masked matches, `goto_table`, apply-actions,
//! `set_field`, `clone`, `resubmit(,T)`, `output`, `output(max_len)`, `NORMAL`. Anything else is
//! reported as unmodelled rather than guessed.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use periscope_codec::openflow::oxm::FieldInfo;
use periscope_codec::openflow::{
    Action, Instruction, Instructions, Match, OxmField, PortNo, TableId,
};

use super::DesiredFlow;

/// Identifies a field: OXM class, experimenter, field number.
type FieldId = (u16, Option<u32>, u8);

fn id(info: &FieldInfo) -> FieldId {
    (info.class, info.experimenter, info.field)
}

/// A packet as the pipeline sees it: the value of every field it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packet {
    fields: BTreeMap<FieldId, u128>,
}

impl Packet {
    /// A packet with the given fields (masks are ignored).
    pub fn new(fields: impl IntoIterator<Item = OxmField>) -> Packet {
        let mut p = Packet::default();
        for f in fields {
            p.set(&f);
        }
        p
    }

    /// Sets a field.
    pub fn set(&mut self, f: &OxmField) {
        if let (Some(info), Some((v, _))) = (f.info(), f.value()) {
            self.fields.insert(id(info), v.as_u128());
        }
    }

    /// The value of a field, if the packet has it.
    pub fn get(&self, f: &OxmField) -> Option<u128> {
        self.fields.get(&id(f.info()?)).copied()
    }

    /// The tunnel key set on the packet.
    pub fn tun_id(&self) -> Option<u64> {
        self.get(&OxmField::TunnelId(0, None)).map(|v| v as u64)
    }

    /// The tunnel destination set on the packet.
    pub fn tun_dst(&self) -> Option<Ipv4Addr> {
        self.get(&OxmField::TunIpv4Dst(Ipv4Addr::UNSPECIFIED, None))
            .map(|v| Ipv4Addr::from(v as u32))
    }

    fn matches(&self, m: &Match) -> bool {
        m.fields.iter().all(|f| {
            let (Some(info), Some((v, mask))) = (f.info(), f.value()) else { return false };
            // Registers are zero when a packet enters the switch; other fields a packet lacks
            // match nothing.
            let have = match (self.fields.get(&id(info)), f) {
                (Some(v), _) => *v,
                (None, OxmField::Reg(..) | OxmField::XReg(..)) => 0,
                (None, _) => return false,
            };
            let mask = mask.map_or(u128::MAX, |m| m.as_u128());
            have & mask == v.as_u128() & mask
        })
    }
}

/// Where a copy of the packet went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Out of a port, with the packet as it left and the truncation length if any.
    Port {
        /// The port.
        port: PortNo,
        /// Truncated to this many bytes.
        max_len: Option<u32>,
        /// The packet as it left.
        packet: Packet,
    },
    /// To the switch's normal L2 forwarding, with the packet as it was handed over.
    Normal(Packet),
}

/// What running a packet through the pipeline did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// Every output, in order.
    pub outputs: Vec<Output>,
    /// Actions or instructions the model does not know, by debug name.
    pub unmodelled: Vec<String>,
}

impl Trace {
    /// Outputs to a given port.
    pub fn to_port(&self, port: PortNo) -> Vec<&Packet> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Port { port: p, packet, .. } if *p == port => Some(packet),
                _ => None,
            })
            .collect()
    }

    /// Packets handed to NORMAL.
    pub fn normal(&self) -> Vec<&Packet> {
        self.outputs
            .iter()
            .filter_map(|o| if let Output::Normal(p) = o { Some(p) } else { None })
            .collect()
    }
}

/// A flow table: flows by table, highest priority first.
#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    tables: BTreeMap<u8, Vec<(u16, Match, Instructions)>>,
}

/// How deep resubmits may nest before the model gives up (Open vSwitch stops at 64).
const MAX_DEPTH: usize = 64;

impl Pipeline {
    /// A pipeline of the given flows.
    pub fn new<'a>(flows: impl IntoIterator<Item = &'a DesiredFlow>) -> Pipeline {
        let mut p = Pipeline::default();
        for f in flows {
            p.add(f.table, f.priority, f.matches.clone(), f.instructions.clone());
        }
        p
    }

    /// Adds one flow.
    pub fn add(&mut self, table: TableId, priority: u16, m: Match, ins: Instructions) {
        let t = self.tables.entry(table.0).or_default();
        t.push((priority, m, ins));
        t.sort_by_key(|f| std::cmp::Reverse(f.0));
    }

    /// Runs `packet` from table 0.
    pub fn run(&self, packet: &Packet) -> Trace {
        let mut trace = Trace::default();
        let mut pkt = packet.clone();
        self.table(0, &mut pkt, &mut trace, 0);
        trace
    }

    fn lookup(&self, table: u8, pkt: &Packet) -> Option<&[Instruction]> {
        self.tables
            .get(&table)?
            .iter()
            .find(|(_, m, _)| pkt.matches(m))
            .map(|(_, _, i)| i.as_slice())
    }

    fn table(&self, table: u8, pkt: &mut Packet, trace: &mut Trace, depth: usize) {
        let mut next = Some(table);
        while let Some(t) = next.take() {
            let Some(ins) = self.lookup(t, pkt) else { return };
            for i in ins {
                match i {
                    Instruction::ApplyActions(a) => self.actions(a, pkt, trace, depth),
                    Instruction::GotoTable(g) if g.0 > t => next = Some(g.0),
                    other => trace.unmodelled.push(format!("{other:?}")),
                }
            }
        }
    }

    fn actions(&self, actions: &[Action], pkt: &mut Packet, trace: &mut Trace, depth: usize) {
        for a in actions {
            match a {
                Action::Output { port, .. } if *port == PortNo::NORMAL => {
                    trace.outputs.push(Output::Normal(pkt.clone()))
                }
                Action::Output { port, .. } => trace.outputs.push(Output::Port {
                    port: *port,
                    max_len: None,
                    packet: pkt.clone(),
                }),
                Action::OutputTrunc { port, max_len } => trace.outputs.push(Output::Port {
                    port: *port,
                    max_len: Some(*max_len),
                    packet: pkt.clone(),
                }),
                Action::SetField(f) => pkt.set(f),
                Action::Clone(inner) => {
                    let mut copy = pkt.clone();
                    self.actions(inner, &mut copy, trace, depth);
                }
                Action::ResubmitTable { table, .. } if depth < MAX_DEPTH => {
                    let t = if table.0 == 0xff { 0 } else { table.0 };
                    self.table(t, pkt, trace, depth + 1);
                }
                other => trace.unmodelled.push(format!("{other:?}")),
            }
        }
    }
}
