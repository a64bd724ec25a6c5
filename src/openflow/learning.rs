//! The `learning-switch` app, sans-IO: an Ethernet learning switch per OpenFlow connection, as
//! os-ken's `simple_switch_13` and cbench's reference controllers do it. It exists to measure
//! the controller's reactive path (packet-in to flow mod) side by side with those controllers;
//! `periscope run --app learning-switch` runs it in every switch's driver, next to the mirrors.
//!
//! A packet-in teaches it where its source MAC lives (per switch). When the destination is
//! known it installs a flow (table 0, priority 1, `in_port, eth_dst, eth_src`, idle timeout)
//! and sends the packet there; otherwise it floods the packet. A buffered packet goes with the
//! flow mod and needs no packet-out.

use std::collections::HashMap;

use periscope_codec::openflow::{
    Action, Actions, BufferId, FlowMod, Instruction, Instructions, MacAddr, Match, Message,
    OxmField, PacketIn, PacketOut, PortNo, TableId,
};

use crate::policy::cookie::{self, Kind};

/// Priority of the learned flows (the table-miss flow is priority 0).
pub const LEARNED_PRIORITY: u16 = 1;
/// Seconds a learned flow lives without traffic.
pub const LEARNED_IDLE_SECS: u16 = 60;
/// MACs learned per switch at most; past it, new sources are flooded and not learned.
pub const MAX_MACS: usize = 1 << 20;

/// Which reactive app the drivers run, besides periscope's own mirrors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum App {
    /// An Ethernet learning switch (os-ken's `simple_switch_13`).
    LearningSwitch,
}

/// The learning switch of one connection.
#[derive(Debug)]
pub struct LearningSwitch {
    mac_to_port: HashMap<MacAddr, PortNo>,
    /// The answers, kept from one packet-in to the next so that answering allocates nothing.
    flow_mod: Message,
    packet_out: Message,
}

impl Default for LearningSwitch {
    fn default() -> Self {
        LearningSwitch {
            mac_to_port: HashMap::new(),
            flow_mod: Message::FlowMod(Box::default()),
            packet_out: Message::PacketOut(PacketOut {
                buffer_id: BufferId::NO_BUFFER,
                in_port: PortNo::CONTROLLER,
                actions: Vec::new(),
                data: Vec::new(),
            }),
        }
    }
}

impl LearningSwitch {
    /// A switch that knows no MAC yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// MACs learned so far.
    pub fn learned(&self) -> usize {
        self.mac_to_port.len()
    }

    /// Whether a packet-in is for this app: not one of periscope's own (mirror probes, LLDP),
    /// which the controller's core handles.
    pub fn wants(pin: &PacketIn) -> bool {
        !cookie::is_ours(pin.cookie)
    }

    /// Learns from one packet-in and hands its answers (a flow mod, a packet-out, or both) to
    /// `send`, in order. A packet-in without an input port or an Ethernet header is ignored.
    pub fn handle_packet_in(&mut self, pin: &PacketIn, mut send: impl FnMut(&Message)) {
        let (Some(in_port), Some(eth)) = (pin.in_port(), pin.data.get(..12)) else { return };
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&eth[..6]);
        src.copy_from_slice(&eth[6..12]);
        let (dst, src) = (MacAddr(dst), MacAddr(src));
        // A multicast source is not an address of a host: never learn it.
        if src.0[0] & 1 == 0
            && (self.mac_to_port.len() < MAX_MACS || self.mac_to_port.contains_key(&src))
        {
            self.mac_to_port.insert(src, in_port);
        }
        let out_port = self.mac_to_port.get(&dst).copied().unwrap_or(PortNo::FLOOD);
        let output = Action::Output { port: out_port, max_len: 0 };
        if out_port != PortNo::FLOOD {
            if let Message::FlowMod(fm) = &mut self.flow_mod {
                **fm = FlowMod {
                    cookie: cookie::cookie(Kind::Learned, 0),
                    table_id: TableId(0),
                    idle_timeout: LEARNED_IDLE_SECS,
                    priority: LEARNED_PRIORITY,
                    buffer_id: pin.buffer_id,
                    matches: Match::new([
                        OxmField::InPort(in_port),
                        OxmField::EthDst(dst, None),
                        OxmField::EthSrc(src, None),
                    ]),
                    instructions: Instructions::from_iter([Instruction::ApplyActions(
                        Actions::from_iter([output.clone()]),
                    )]),
                    ..FlowMod::default()
                };
            }
            send(&self.flow_mod);
            if pin.buffer_id != BufferId::NO_BUFFER {
                // The switch applies the flow to the buffered packet itself.
                return;
            }
        }
        if let Message::PacketOut(po) = &mut self.packet_out {
            po.buffer_id = pin.buffer_id;
            po.in_port = in_port;
            po.actions.clear();
            po.actions.push(output);
            po.data.clear();
            if pin.buffer_id == BufferId::NO_BUFFER {
                po.data.extend_from_slice(&pin.data);
            }
        }
        send(&self.packet_out);
    }
}

#[cfg(test)]
mod tests {
    use periscope_codec::openflow::{Cookie, PacketInReason};

    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn pin(port: u32, dst: [u8; 6], src: [u8; 6], buffer: BufferId) -> PacketIn {
        let mut data = Vec::new();
        data.extend_from_slice(&dst);
        data.extend_from_slice(&src);
        data.extend_from_slice(&[0x88, 0xb5, 1, 2, 3, 4]);
        PacketIn {
            buffer_id: buffer,
            total_len: data.len() as u16,
            reason: PacketInReason::NoMatch,
            table_id: TableId(0),
            cookie: Cookie(0),
            matches: Match::new([OxmField::InPort(PortNo(port))]),
            data,
        }
    }

    fn answer(sw: &mut LearningSwitch, p: &PacketIn) -> Vec<Message> {
        let mut out = Vec::new();
        sw.handle_packet_in(p, |m| out.push(m.clone()));
        out
    }

    #[test]
    fn floods_an_unknown_destination_then_installs_the_learned_path() {
        let mut sw = LearningSwitch::new();
        let out = answer(&mut sw, &pin(1, B, A, BufferId::NO_BUFFER));
        let [Message::PacketOut(po)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(po.actions.as_slice(), &[Action::Output { port: PortNo::FLOOD, max_len: 0 }]);
        assert_eq!(po.in_port, PortNo(1));
        assert_eq!(po.data.len(), 18, "the packet goes with its packet-out");
        // B answers from port 2: A is known, so the flow to A is installed and the packet sent.
        let out = answer(&mut sw, &pin(2, A, B, BufferId::NO_BUFFER));
        let [Message::FlowMod(fm), Message::PacketOut(po)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(
            fm.matches.fields.as_slice(),
            &[
                OxmField::InPort(PortNo(2)),
                OxmField::EthDst(MacAddr(A), None),
                OxmField::EthSrc(MacAddr(B), None)
            ]
        );
        assert_eq!((fm.priority, fm.idle_timeout), (LEARNED_PRIORITY, LEARNED_IDLE_SECS));
        assert_eq!(cookie::decode(fm.cookie), Some((Kind::Learned as u8, 0)));
        assert_eq!(po.actions.as_slice(), &[Action::Output { port: PortNo(1), max_len: 0 }]);
        assert_eq!(sw.learned(), 2);
    }

    #[test]
    fn a_buffered_packet_goes_with_the_flow_mod_and_bad_ones_are_ignored() {
        let mut sw = LearningSwitch::new();
        answer(&mut sw, &pin(1, B, A, BufferId::NO_BUFFER));
        let out = answer(&mut sw, &pin(2, A, B, BufferId(7)));
        let [Message::FlowMod(fm)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(fm.buffer_id, BufferId(7));
        let mut short = pin(1, A, B, BufferId::NO_BUFFER);
        short.data.truncate(11);
        assert!(answer(&mut sw, &short).is_empty());
        let mut no_port = pin(1, A, B, BufferId::NO_BUFFER);
        no_port.matches = Match::default();
        assert!(answer(&mut sw, &no_port).is_empty());
        // A multicast source floods but is not learned.
        let mut multicast = B;
        multicast[0] = 1;
        let out = answer(&mut sw, &pin(3, multicast, multicast, BufferId::NO_BUFFER));
        assert!(matches!(out.as_slice(), [Message::PacketOut(_)]), "{out:?}");
        assert_eq!(sw.learned(), 2);
    }

    #[test]
    fn periscope_s_own_packet_ins_are_not_for_the_app() {
        let mut p = pin(1, A, B, BufferId::NO_BUFFER);
        assert!(LearningSwitch::wants(&p));
        p.cookie = cookie::cookie(Kind::Probe, 3);
        assert!(!LearningSwitch::wants(&p));
    }
}
