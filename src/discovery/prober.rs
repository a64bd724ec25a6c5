//! Which probes to send when, and what a received probe means. Sans-IO: the caller passes the
//! time and the topology, sends the frames it is given, and applies the changes it gets back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use periscope_codec::openflow::{Dpid, PortNo};
use periscope_topology::rows::OfPort;
use periscope_topology::{Change, Event, EventKind, Millis, RowRef, SwitchPort, Topology};

use super::lldp::{LldpError, Probe};

/// The name prefix of periscope's own tunnel ports: never probed.
const TUNNEL_PREFIX: &str = "psc-";

/// How often to probe and when to give a link up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProberConfig {
    /// Every port is probed once per interval.
    pub interval: Millis,
    /// A link not seen for this long is gone.
    pub max_age: Millis,
    /// At most this many probes per poll, whatever the number of ports (then ports are probed
    /// less often than `interval`).
    pub max_per_poll: usize,
    /// A port is probed only once it has been eligible this long: OpenFlow may report a new
    /// port a moment before OVSDB says it is a VM's, and a VM must never see a probe.
    pub settle: Millis,
}

impl Default for ProberConfig {
    fn default() -> Self {
        ProberConfig {
            interval: Millis(300),
            max_age: Millis(1000),
            max_per_poll: 256,
            settle: Millis(200),
        }
    }
}

/// One probe to send: `frame` out of `port` of switch `dpid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOut {
    /// The switch.
    pub dpid: Dpid,
    /// The port to send it out of.
    pub port: PortNo,
    /// The LLDP frame.
    pub frame: Vec<u8>,
}

/// Sends probes round-robin over the probed ports at a steady rate, and recognises its own.
#[derive(Debug, Clone)]
pub struct Prober {
    config: ProberConfig,
    nonce: u64,
    /// The port probed last: the next poll goes on after it.
    cursor: Option<SwitchPort>,
    last_poll: Option<Millis>,
    /// Probes owed, in port-milliseconds (`interval` of them make one probe).
    owed: u64,
    /// Since when each eligible port has been eligible.
    since: BTreeMap<SwitchPort, Millis>,
}

impl Prober {
    /// A prober marking its probes with `nonce` (random per controller run).
    pub fn new(config: ProberConfig, nonce: u64) -> Self {
        Prober { config, nonce, cursor: None, last_poll: None, owed: 0, since: BTreeMap::new() }
    }

    /// The nonce this prober's frames carry.
    pub fn nonce(&self) -> u64 {
        self.nonce
    }

    /// Its configuration.
    pub fn config(&self) -> &ProberConfig {
        &self.config
    }

    /// The probes due at `now` over `eligible` ports: one per port and `interval`, spread
    /// evenly over the polls, continuing where the last poll stopped; a port joins the
    /// rotation once it has been eligible for `settle`.
    pub fn poll_probes(&mut self, now: Millis, eligible: &BTreeSet<SwitchPort>) -> Vec<ProbeOut> {
        self.since.retain(|p, _| eligible.contains(p));
        for p in eligible {
            self.since.entry(*p).or_insert(now);
        }
        let settle = self.config.settle.0;
        let ports: BTreeSet<SwitchPort> = self
            .since
            .iter()
            .filter(|(_, t)| t.0.saturating_add(settle) <= now.0)
            .map(|(p, _)| *p)
            .collect();
        let elapsed = self.last_poll.map_or(0, |t| now.0.saturating_sub(t.0));
        self.last_poll = Some(now);
        let n = ports.len() as u64;
        let interval = self.config.interval.0.max(1);
        // A stall (slow core, suspended process) does not turn into a burst afterwards.
        self.owed = self.owed.saturating_add(n.saturating_mul(elapsed)).min(n * interval);
        let due = ((self.owed / interval) as usize).min(self.config.max_per_poll).min(ports.len());
        self.owed -= due as u64 * interval;
        let start = match self.cursor {
            Some(c) => Bound::Excluded(c),
            None => Bound::Unbounded,
        };
        let after = ports.range((start, Bound::Unbounded));
        let before = ports.range((
            Bound::Unbounded,
            match self.cursor {
                Some(c) => Bound::Included(c),
                None => Bound::Unbounded,
            },
        ));
        let mut out = Vec::with_capacity(due);
        for sp in after.chain(before).take(due) {
            self.cursor = Some(*sp);
            let probe = Probe { dpid: sp.dpid, port: sp.port, nonce: self.nonce };
            out.push(ProbeOut { dpid: sp.dpid, port: sp.port, frame: probe.to_vec() });
        }
        out
    }

    /// A frame received at `in_port` of `dpid`: the link it proves, if it is one of this
    /// prober's probes and did not come back to the port it left by.
    pub fn handle_frame(
        &self,
        now: Millis,
        dpid: Dpid,
        in_port: PortNo,
        frame: &[u8],
    ) -> Result<Option<Change>, LldpError> {
        let probe = Probe::parse(frame)?;
        if probe.nonce != self.nonce {
            return Err(LldpError::Foreign);
        }
        let a = SwitchPort { dpid: probe.dpid, port: probe.port };
        let b = SwitchPort { dpid, port: in_port };
        Ok((a != b).then_some(Change::LldpLinkSeen { a, b, at: now }))
    }

    /// Forgets the links not seen for `max_age`.
    pub fn expire(&self, topology: &mut Topology, now: Millis) -> Vec<Event> {
        topology.expire_lldp(now, self.config.max_age)
    }
}

/// The ports worth probing: live physical ports of connected switches whose bridge OVSDB
/// describes, except VM interfaces (an attached interface with an iface-id) and periscope's own
/// tunnel ports. Without OVSDB a VM's port cannot be told from a cable: nothing is probed.
/// Walks every port: [`ProbedPorts`] keeps the same set up to date switch by switch.
pub fn probed_ports(topology: &Topology) -> BTreeSet<SwitchPort> {
    topology
        .switch_ports()
        .filter(|(dpid, p)| is_probed(topology, *dpid, p))
        .map(|(dpid, p)| SwitchPort { dpid, port: p.port_no })
        .collect()
}

/// Whether port `p` of switch `dpid` is worth probing (see [`probed_ports`]).
fn is_probed(topology: &Topology, dpid: Dpid, p: &OfPort) -> bool {
    p.live
        && p.port_no.0 != 0
        && p.port_no <= PortNo::MAX
        && !p.name.starts_with(TUNNEL_PREFIX)
        && topology.bridge_by_dpid(dpid).is_some()
        && topology
            .interface_at(SwitchPort { dpid, port: p.port_no })
            .is_none_or(|i| i.iface_id().is_none())
}

/// The ports worth probing ([`probed_ports`]), updated incrementally: after every change to
/// the topology, only the switches it may have touched are read again, so a migration wave
/// among thousands of ports costs the ports of the bridges it moves on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbedPorts {
    ports: BTreeSet<SwitchPort>,
    /// The switch each ready interface is at, as the events told: an interface leaving a
    /// switch for another is told by a [`EventKind::LocationReady`] naming only the new one.
    ready_on: HashMap<RowRef, Dpid>,
}

impl ProbedPorts {
    /// The ports worth probing now.
    pub fn ports(&self) -> &BTreeSet<SwitchPort> {
        &self.ports
    }

    /// Follows `topology` after changes naming `switches` ([`Change::switch`]) were applied to
    /// it and caused `events`: reads again those switches, the switches the events name
    /// ([`EventKind::switches`]) and those the interfaces the events are about were ready on.
    pub fn update(
        &mut self,
        topology: &Topology,
        switches: impl IntoIterator<Item = Dpid>,
        events: &[Event],
    ) {
        let mut touched: BTreeSet<Dpid> = switches.into_iter().collect();
        for e in events {
            touched.extend(e.kind.switches());
            let (row, now) = match &e.kind {
                EventKind::InterfaceAppeared { location }
                | EventKind::InterfaceUpdated { location }
                | EventKind::LocationReady { location } => (
                    location.interface_ref(),
                    location.is_ready().then_some(location.dpid).flatten(),
                ),
                EventKind::InterfaceGone { location } | EventKind::LocationUnready { location } => {
                    (location.interface_ref(), None)
                }
                _ => continue,
            };
            let before = match now {
                Some(dpid) => self.ready_on.insert(row, dpid),
                None => self.ready_on.remove(&row),
            };
            touched.extend(before);
        }
        for dpid in touched {
            self.refresh(topology, dpid);
        }
    }

    /// Reads the probed ports of switch `dpid` again from `topology`.
    fn refresh(&mut self, topology: &Topology, dpid: Dpid) {
        let first = SwitchPort { dpid, port: PortNo(0) };
        let last = SwitchPort { dpid, port: PortNo(u32::MAX) };
        let stale: Vec<SwitchPort> = self.ports.range(first..=last).copied().collect();
        for sp in stale {
            self.ports.remove(&sp);
        }
        self.ports.extend(
            topology
                .ports_of_switch(dpid)
                .filter(|p| is_probed(topology, dpid, p))
                .map(|p| SwitchPort { dpid, port: p.port_no }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_topology::rows::{BridgeRow, InterfaceRow, OfPort, PortRow};
    use periscope_topology::{TopologyConfig, Uuid};

    fn sp(d: u64, p: u32) -> SwitchPort {
        SwitchPort { dpid: Dpid(d), port: PortNo(p) }
    }

    /// The default configuration, with ports probed as soon as they are eligible.
    fn eager() -> ProberConfig {
        ProberConfig { settle: Millis(0), ..ProberConfig::default() }
    }

    #[test]
    fn every_port_is_probed_once_per_interval_spread_over_polls() {
        let mut pr = Prober::new(eager(), 7);
        let ports: BTreeSet<_> = (1..=6).map(|p| sp(1, p)).collect();
        let mut sent = Vec::new();
        for t in 0..=30 {
            let out = pr.poll_probes(Millis(t * 100), &ports);
            // 6 ports every 300 ms at one poll per 100 ms: 2 per poll, never a burst.
            assert!(out.len() <= 2, "poll {t} sent {}", out.len());
            sent.extend(out.into_iter().map(|o| (t * 100, o.port.0)));
        }
        for p in 1..=6 {
            let times: Vec<u64> = sent.iter().filter(|(_, q)| *q == p).map(|(t, _)| *t).collect();
            assert!(times.len() >= 9, "port {p} probed {} times", times.len());
            assert!(times.windows(2).all(|w| w[1] - w[0] <= 300), "port {p}: {times:?}");
        }
    }

    #[test]
    fn probes_per_poll_are_bounded_and_a_stall_makes_no_burst() {
        let cfg = ProberConfig { max_per_poll: 10, ..eager() };
        let mut pr = Prober::new(cfg, 7);
        let ports: BTreeSet<_> = (1..=1000).map(|p| sp(1, p)).collect();
        pr.poll_probes(Millis(0), &ports);
        assert_eq!(pr.poll_probes(Millis(100), &ports).len(), 10);
        let few: BTreeSet<_> = (1..=3).map(|p| sp(1, p)).collect();
        let mut pr = Prober::new(eager(), 7);
        pr.poll_probes(Millis(0), &few);
        assert_eq!(pr.poll_probes(Millis(60_000), &few).len(), 3);
        assert_eq!(pr.poll_probes(Millis(60_100), &few).len(), 1);
    }

    #[test]
    fn a_new_port_is_probed_only_after_settling() {
        let mut pr = Prober::new(ProberConfig::default(), 7);
        let ports: BTreeSet<_> = [sp(1, 1)].into();
        let mut first = None;
        for t in 0..10 {
            if !pr.poll_probes(Millis(t * 100), &ports).is_empty() && first.is_none() {
                first = Some(t * 100);
            }
        }
        let first = first.expect("never probed");
        assert!((200..=600).contains(&first), "first probe at {first} ms");
        // A port that leaves and comes back settles again.
        pr.poll_probes(Millis(1000), &BTreeSet::new());
        assert!(pr.poll_probes(Millis(1100), &ports).is_empty());
    }

    #[test]
    fn a_received_probe_is_a_link_and_a_foreign_one_is_not() {
        let mut pr = Prober::new(eager(), 42);
        let ports: BTreeSet<_> = [sp(1, 5)].into();
        pr.poll_probes(Millis(0), &ports);
        let out = pr.poll_probes(Millis(300), &ports);
        assert_eq!(out.len(), 1);
        let seen = pr.handle_frame(Millis(301), Dpid(2), PortNo(9), &out[0].frame);
        assert_eq!(
            seen,
            Ok(Some(Change::LldpLinkSeen { a: sp(1, 5), b: sp(2, 9), at: Millis(301) }))
        );
        // Back where it left: no link.
        assert_eq!(pr.handle_frame(Millis(301), Dpid(1), PortNo(5), &out[0].frame), Ok(None));
        // Another controller's probe.
        let other = Prober::new(eager(), 43);
        assert_eq!(
            other.handle_frame(Millis(301), Dpid(2), PortNo(9), &out[0].frame),
            Err(LldpError::Foreign)
        );
    }

    #[test]
    fn links_expire_when_no_longer_seen() {
        let pr = Prober::new(ProberConfig::default(), 1);
        let mut topo = Topology::new(TopologyConfig::default());
        topo.apply(Change::LldpLinkSeen { a: sp(1, 1), b: sp(2, 1), at: Millis(1000) });
        assert_eq!(topo.links().len(), 1);
        assert!(pr.expire(&mut topo, Millis(1900)).is_empty());
        assert_eq!(pr.expire(&mut topo, Millis(2100)).len(), 1);
        assert!(topo.links().is_empty());
    }

    fn port(n: u32, name: &str, live: bool) -> OfPort {
        OfPort { port_no: PortNo(n), name: name.into(), live }
    }

    #[test]
    fn vm_tunnel_local_and_dead_ports_are_not_probed() {
        let mut topo = Topology::new(TopologyConfig::default());
        let mut kept = ProbedPorts::default();
        apply(
            &mut topo,
            &mut kept,
            vec![
                Change::SwitchConnected { dpid: Dpid(1) },
                Change::SwitchPortsReplaced {
                    dpid: Dpid(1),
                    ports: vec![
                        port(1, "veth-a", true),
                        port(2, "psc-vxlan", true),
                        port(3, "down", false),
                        port(4, "vm1", true),
                        port(PortNo::LOCAL.0, "br-int", true),
                    ],
                },
            ],
        );
        assert_eq!(kept.ports(), &probed_ports(&topo));
        // Without OVSDB, port 4 could be a VM's: nothing is probed.
        assert_eq!(probed_ports(&topo), BTreeSet::new());
        let hv = periscope_topology::HypervisorId::from("hv1");
        let vm = InterfaceRow {
            uuid: Uuid::from("i4"),
            name: "vm1".into(),
            ofport: Some(PortNo(4)),
            external_ids: [("iface-id".into(), "vm1-port".into())].into(),
            ..InterfaceRow::default()
        };
        apply(
            &mut topo,
            &mut kept,
            vec![
                Change::BridgeUpserted {
                    hypervisor: hv.clone(),
                    row: BridgeRow {
                        uuid: Uuid::from("b1"),
                        name: "br-int".into(),
                        datapath_id: Some(Dpid(1)),
                        ports: [Uuid::from("p4")].into(),
                    },
                },
                Change::PortUpserted {
                    hypervisor: hv.clone(),
                    row: PortRow {
                        uuid: Uuid::from("p4"),
                        name: "vm1".into(),
                        interfaces: [Uuid::from("i4")].into(),
                    },
                },
                Change::InterfaceUpserted { hypervisor: hv, row: vm },
            ],
        );
        assert_eq!(probed_ports(&topo), [sp(1, 1)].into());
        assert_eq!(kept.ports(), &probed_ports(&topo));
        // The VM's interface moves to the other bridge: its port there is no longer probed,
        // and the port it left on the first is (whatever is plugged there now is no VM's).
        apply(
            &mut topo,
            &mut kept,
            vec![
                Change::SwitchConnected { dpid: Dpid(2) },
                Change::SwitchPortsReplaced { dpid: Dpid(2), ports: vec![port(4, "vm1", true)] },
                Change::BridgeUpserted {
                    hypervisor: "hv1".into(),
                    row: BridgeRow {
                        uuid: Uuid::from("b0"),
                        name: "br-ex".into(),
                        datapath_id: Some(Dpid(2)),
                        ports: [Uuid::from("p4")].into(),
                    },
                },
            ],
        );
        assert_eq!(kept.ports(), &probed_ports(&topo));
        assert_eq!(kept.ports(), &[sp(1, 1), sp(1, 4)].into());
    }

    /// Applies `changes` as the controller core does: the probed ports follow.
    fn apply(topo: &mut Topology, kept: &mut ProbedPorts, changes: Vec<Change>) {
        let switches: Vec<Dpid> = changes.iter().filter_map(Change::switch).collect();
        let events = topo.apply_batch(changes);
        kept.update(topo, switches, &events);
    }
}
