//! `periscope bench reactive`: cbench's method on OpenFlow 1.3. Each emulated switch sends
//! PACKET_INs with varying source MACs and counts the FLOW_MODs and PACKET_OUTs that come back.
//! In throughput mode every switch keeps the pipe full; in latency mode it keeps one packet-in
//! outstanding and times the packet-out that carries it back.
//!
//! The handshake is the emulated switch's own ([`super::switch::EmulatedSwitch`]); once
//! handshaken, a switch leaves the framed codec for a loop over raw bytes, so that the load
//! generator spends as little of the machine's CPU as it can: packet-ins are a template with
//! five fields patched, and answers are counted from their headers. Anything other than a flow
//! mod or a packet-out (barriers, echo, multipart) is parsed and answered by the emulated
//! switch as during the handshake.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{Framed, FramedParts};

use periscope_codec::openflow::{
    BufferId, Cookie, Match, Message, MsgType, OfpMessage, OxmField, PacketIn, PacketInReason,
    PortNo, TableId, Xid,
};

use super::run::{percentile_ms, ReadyOn};
use super::switch::{EmulatedSwitch, Milestone};
use crate::openflow::framing::{Frame, OfpCodec};

/// How the switches send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReactiveMode {
    /// Every switch keeps the pipe full (as many packet-ins as the socket takes).
    Throughput,
    /// Every switch keeps one packet-in outstanding, until its packet-out comes back.
    Latency,
}

/// EtherType of the emulated hosts' frames (IEEE local experimental): no controller mistakes
/// them for ARP or IP.
pub const ETHERTYPE: u16 = 0x88b5;
/// Bytes of the emulated hosts' frames (a minimum Ethernet frame without its FCS).
pub const FRAME_LEN: usize = 60;
/// Where a frame carries its sequence number: after the Ethernet header.
const SEQ_AT: usize = 14;
/// Bytes an 802.1Q tag adds to the Ethernet header.
const VLAN_TAG_LEN: usize = 4;
/// The EtherType that announces an 802.1Q tag.
const ETHERTYPE_VLAN: u16 = 0x8100;
/// The VLAN faucet puts every emulated port on. Its pipeline tags a frame of a native-VLAN port
/// before the frame reaches faucet, and faucet learns only from tagged packet-ins, so its
/// switches send their frames tagged with it.
pub const FAUCET_VID: u16 = 100;
/// Packet-ins queued for the socket at most, per switch, in throughput mode.
const OUT_BATCH: usize = 64;
/// A packet-in unanswered this long in latency mode counts as lost, and the next one goes.
const LATENCY_TIMEOUT: Duration = Duration::from_secs(1);

/// Datapath id of switch `index`: from 1, with a high byte that tells them from real bridges
/// (the same as the storm's).
pub fn dpid(index: usize) -> u64 {
    0xbe00_0000_0000_0000 | (index as u64 + 1)
}

/// MAC address of host `k` of switch `index`: locally administered, unicast, unique.
pub fn host_mac(index: usize, k: usize) -> [u8; 6] {
    [2, (index >> 8) as u8, index as u8, (k >> 16) as u8, (k >> 8) as u8, k as u8]
}

/// The port host `k` sits behind on a switch with `ports` ports.
pub fn host_port(k: usize, ports: u16) -> u32 {
    (k % usize::from(ports.max(1))) as u32 + 1
}

/// The packet-ins of one emulated switch: a template with the fields that vary patched in.
#[derive(Debug, Clone)]
pub struct PacketInTemplate {
    bytes: Vec<u8>,
    in_port_at: usize,
    data_at: usize,
    vlan: Option<u16>,
}

impl PacketInTemplate {
    /// The template: sent by an output-to-controller action (faucet drops table-miss
    /// packet-ins), unbuffered, the whole frame included, in_port metadata; the frames carry
    /// an 802.1Q tag with `vlan` when one is given.
    pub fn new(vlan: Option<u16>) -> Self {
        let pin = PacketIn {
            buffer_id: BufferId::NO_BUFFER,
            total_len: FRAME_LEN as u16,
            reason: PacketInReason::Action,
            table_id: TableId(0),
            cookie: Cookie(0),
            matches: Match::new([OxmField::InPort(PortNo(1))]),
            data: vec![0; FRAME_LEN],
        };
        let bytes = OfpMessage::new(Xid(0), Message::PacketIn(Box::new(pin))).to_vec();
        let data_at = bytes.len() - FRAME_LEN;
        // header 8, buffer_id 4, total_len 2, reason 1, table 1, cookie 8, match type and
        // length 4, the in_port OXM header 4: then its value.
        PacketInTemplate { bytes, in_port_at: 32, data_at, vlan }
    }

    /// Appends packet-in number `seq` of switch `index` with `macs` hosts behind `ports`
    /// ports: from host `seq % macs` to host `(seq + 1) % macs`.
    pub fn put(&self, out: &mut BytesMut, index: usize, seq: u32, macs: usize, ports: u16) {
        let src = seq as usize % macs.max(1);
        let dst = host_mac(index, (src + 1) % macs.max(1));
        self.fill(out, seq, host_port(src, ports), dst, host_mac(index, src));
    }

    /// Appends a broadcast from host `k` (sequence number `k`): it teaches a learning switch
    /// where the host is without installing a flow.
    pub fn put_announcement(&self, out: &mut BytesMut, index: usize, k: usize, ports: u16) {
        self.fill(out, k as u32, host_port(k, ports), [0xff; 6], host_mac(index, k));
    }

    fn fill(&self, out: &mut BytesMut, seq: u32, in_port: u32, dst: [u8; 6], src: [u8; 6]) {
        let at = out.len();
        out.extend_from_slice(&self.bytes);
        let b = &mut out[at..];
        b[4..8].copy_from_slice(&seq.to_be_bytes());
        b[self.in_port_at..self.in_port_at + 4].copy_from_slice(&in_port.to_be_bytes());
        let d = self.data_at;
        b[d..d + 6].copy_from_slice(&dst);
        b[d + 6..d + 12].copy_from_slice(&src);
        let d = match self.vlan {
            Some(vid) => {
                b[d + 12..d + 14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
                b[d + 14..d + 16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
                d + VLAN_TAG_LEN
            }
            None => d,
        };
        b[d + 12..d + 14].copy_from_slice(&ETHERTYPE.to_be_bytes());
        b[d + SEQ_AT..d + SEQ_AT + 4].copy_from_slice(&seq.to_be_bytes());
    }
}

/// faucet's configuration for `switches` emulated switches of `ports` ports, all on one VLAN,
/// with `macs` hosts behind each switch. The packet-ins carry no faucet cookie, so faucet is told
/// not to insist on it; its host limits (256 a VLAN, 255 a port by default) are raised to the
/// hosts there are, or it would stop learning at 256 a switch.
pub fn faucet_yaml(switches: usize, ports: u16, macs: usize) -> String {
    let per_port = macs.div_ceil(usize::from(ports.max(1)));
    let mut y =
        format!("vlans:\n  bench:\n    vid: {FAUCET_VID}\n    max_hosts: {}\ndps:\n", macs.max(1));
    for index in 0..switches {
        y.push_str(&format!(
            "  bench{index}:\n    dp_id: {:#x}\n    hardware: Open vSwitch\n    \
             strict_packet_in_cookie: false\n    interfaces:\n",
            dpid(index)
        ));
        for p in 1..=ports.max(1) {
            y.push_str(&format!(
                "      {p}:\n        native_vlan: bench\n        max_hosts: {}\n",
                per_port.max(1)
            ));
        }
    }
    y
}

/// The frame a PACKET_OUT carries, if any.
fn packet_out_frame(msg: &[u8]) -> Option<&[u8]> {
    // header 8, buffer_id 4, in_port 4, actions_len 2, pad 6: then the actions, then the frame.
    let actions_len = usize::from(u16::from_be_bytes([*msg.get(16)?, *msg.get(17)?]));
    msg.get(24 + actions_len..)
}

/// The sequence number a PACKET_OUT carries back in its frame, if it carries one of ours.
pub fn packet_out_seq(msg: &[u8]) -> Option<u32> {
    let mut frame = packet_out_frame(msg)?;
    if frame.get(12..14)? == ETHERTYPE_VLAN.to_be_bytes() {
        frame = frame.get(VLAN_TAG_LEN..)?;
    }
    if frame.get(12..14)? != ETHERTYPE.to_be_bytes() {
        return None;
    }
    let s = frame.get(SEQ_AT..SEQ_AT + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Which of one switch's hosts the controller has shown it knows: by a flow mod that names
/// the host's MAC (as source or destination), or a packet-out that carries the host's frame.
#[derive(Debug)]
pub struct HostsLearned {
    index: usize,
    known: Vec<bool>,
    count: usize,
    last: Option<Instant>,
}

impl HostsLearned {
    /// None of the `macs` hosts of switch `index` known yet.
    pub fn new(index: usize, macs: usize) -> Self {
        HostsLearned { index, known: vec![false; macs], count: 0, last: None }
    }

    /// Hosts known.
    pub fn count(&self) -> usize {
        self.count
    }

    /// When the last of them became known.
    pub fn last(&self) -> Option<Instant> {
        self.last
    }

    /// Hosts not known yet.
    fn unknown(&self) -> impl Iterator<Item = usize> + '_ {
        self.known.iter().enumerate().filter(|(_, k)| !**k).map(|(h, _)| h)
    }

    /// Counts the host with this MAC, if it is one of this switch's.
    fn see(&mut self, mac: &[u8]) {
        let [2, hi, lo, a, b, c] = *mac else { return };
        if [hi, lo] != [(self.index >> 8) as u8, self.index as u8] {
            return;
        }
        let k = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
        if let Some(known @ false) = self.known.get_mut(k) {
            *known = true;
            self.count += 1;
            self.last = Some(Instant::now());
        }
    }

    /// Counts the hosts a flow mod (raw, header included) names in its match.
    pub fn from_flow_mod(&mut self, msg: &[u8]) {
        let Ok(OfpMessage { msg: Message::FlowMod(fm), .. }) = OfpMessage::parse(msg) else {
            return;
        };
        for f in &fm.matches.fields {
            if let OxmField::EthSrc(mac, _) | OxmField::EthDst(mac, _) = f {
                self.see(&mac.0);
            }
        }
    }

    /// Counts the host whose frame a packet-out (raw, header included) carries.
    pub fn from_packet_out(&mut self, msg: &[u8]) {
        if let Some(src) = packet_out_frame(msg).and_then(|f| f.get(6..12)) {
            self.see(src);
        }
    }
}

/// Counters all switches add to, a batch at a time.
#[derive(Debug, Default)]
pub struct Counters {
    /// PACKET_INs written to the socket.
    pub packet_ins: AtomicU64,
    /// FLOW_MODs received.
    pub flow_mods: AtomicU64,
    /// PACKET_OUTs received.
    pub packet_outs: AtomicU64,
    /// Latency mode: packet-ins that timed out unanswered.
    pub lost: AtomicU64,
    /// Latency samples are kept while this is set (the measurement window).
    pub measuring: AtomicBool,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// PACKET_INs sent.
    pub packet_ins: u64,
    /// FLOW_MODs received.
    pub flow_mods: u64,
    /// PACKET_OUTs received.
    pub packet_outs: u64,
    /// Packet-ins lost (latency mode).
    pub lost: u64,
}

impl Counters {
    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            packet_ins: self.packet_ins.load(Ordering::Relaxed),
            flow_mods: self.flow_mods.load(Ordering::Relaxed),
            packet_outs: self.packet_outs.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
        }
    }
}

/// What one switch's learning phase brought.
#[derive(Debug, Clone, Copy)]
pub struct Learned {
    /// Flow mods and packet-outs that answered the announcements.
    pub answers: u64,
    /// Hosts the controller showed it knows.
    pub hosts: usize,
    /// When the last of them became known.
    pub last: Option<Instant>,
}

/// What one switch tells the coordinator.
#[derive(Debug)]
pub enum Progress {
    /// Handshaken, its hosts announced (what that brought): waiting for the start.
    Ready(Learned),
    /// Failed (why).
    Failed(String),
}

/// What the coordinator tells the switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Wait.
    Hold,
    /// Send packet-ins.
    Go,
    /// Close the connection.
    Stop,
}

/// The parameters of one switch.
#[derive(Debug, Clone, Copy)]
pub struct SwitchPlan {
    /// Its index (its dpid and MACs derive from it).
    pub index: usize,
    /// Its ports.
    pub ports: u16,
    /// Hosts (MACs) behind it.
    pub macs: usize,
    /// How it sends.
    pub mode: ReactiveMode,
    /// When it counts as handshaken.
    pub ready_on: ReadyOn,
    /// The 802.1Q tag its frames carry, if any ([`FAUCET_VID`] for faucet).
    pub vlan: Option<u16>,
}

/// Runs one switch: handshake, every host announced once, then packet-ins until told to stop. Returns its latency
/// samples from the measurement window.
pub async fn switch_task(
    plan: SwitchPlan,
    addr: SocketAddr,
    mut orders: watch::Receiver<Order>,
    progress: mpsc::UnboundedSender<Progress>,
    counters: Arc<Counters>,
) -> Vec<Duration> {
    let mut sw = EmulatedSwitch::new(dpid(plan.index), plan.ports);
    let parts = match handshake(&mut sw, addr, plan.ready_on).await {
        Ok(p) => p,
        Err(e) => {
            let _ = progress.send(Progress::Failed(e));
            return Vec::new();
        }
    };
    let template = PacketInTemplate::new(plan.vlan);
    let mut wire = Wire::new(sw, parts);
    match learn(plan, &mut wire, &template, &mut orders).await {
        Ok(learned) => {
            let _ = progress.send(Progress::Ready(learned));
        }
        Err(e) => {
            let _ = progress.send(Progress::Failed(e));
            return Vec::new();
        }
    }
    while *orders.borrow_and_update() == Order::Hold {
        if orders.changed().await.is_err() {
            return Vec::new();
        }
    }
    match pump(plan, &mut wire, &template, &mut orders, &counters).await {
        Ok(samples) => samples,
        Err((samples, e)) => {
            let _ = progress.send(Progress::Failed(e));
            samples
        }
    }
}

/// Connects and answers the controller until the switch is handshaken.
async fn handshake(
    sw: &mut EmulatedSwitch,
    addr: SocketAddr,
    ready_on: ReadyOn,
) -> Result<FramedParts<TcpStream, OfpCodec>, String> {
    let stream =
        TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, OfpCodec);
    framed.send(sw.hello()).await.map_err(|e| format!("sending HELLO: {e}"))?;
    let (mut out, mut milestones) = (Vec::new(), Vec::new());
    let (mut features, mut flow_mod, mut confirmed) = (false, false, false);
    loop {
        let m = match framed.next().await {
            Some(Ok(Frame::Message(m))) => m,
            Some(Ok(Frame::Malformed { error, .. })) => {
                return Err(format!("controller sent a malformed message: {error}"))
            }
            Some(Err(e)) => return Err(format!("connection: {e}")),
            None => return Err("the controller closed the connection".into()),
        };
        sw.handle(m, &mut out, &mut milestones);
        for m in out.drain(..) {
            framed.feed(m).await.map_err(|e| format!("sending: {e}"))?;
        }
        framed.flush().await.map_err(|e| format!("sending: {e}"))?;
        for ms in milestones.drain(..) {
            match ms {
                Milestone::Features => features = true,
                Milestone::FirstFlowMod => flow_mod = true,
                Milestone::ProgramConfirmed => confirmed = true,
                Milestone::VersionRefused => {
                    return Err("the controller does not speak OpenFlow 1.3".into())
                }
                Milestone::Hello | Milestone::EchoReply(_) => {}
            }
        }
        let ready = features
            && match ready_on {
                ReadyOn::Barrier => confirmed,
                ReadyOn::FlowMod => flow_mod,
            };
        if ready {
            return Ok(framed.into_parts());
        }
    }
}

/// One handshaken switch's connection, over raw bytes.
struct Wire {
    stream: TcpStream,
    inbuf: BytesMut,
    outbuf: BytesMut,
    sw: EmulatedSwitch,
    replies: Vec<OfpMessage>,
    milestones: Vec<Milestone>,
    /// During the learning phase: the hosts the answers showed known.
    learned: Option<HostsLearned>,
}

/// What one read brought.
#[derive(Debug, Default)]
struct Arrived {
    flow_mods: u64,
    packet_outs: u64,
    /// Whether a packet-out carried the packet-in with this sequence number back.
    answered: bool,
}

impl Wire {
    fn new(sw: EmulatedSwitch, parts: FramedParts<TcpStream, OfpCodec>) -> Self {
        Wire {
            stream: parts.io,
            inbuf: parts.read_buf,
            outbuf: BytesMut::with_capacity(OUT_BATCH * 128),
            sw,
            replies: Vec::new(),
            milestones: Vec::new(),
            learned: None,
        }
    }

    /// Waits until something arrived (`Ok(Some)`), the socket took some of what we had to
    /// send (`Ok(None)`), or `stop` fired or `wait` passed (`Ok(None)` too; the caller checks).
    async fn exchange(
        &mut self,
        wait: Option<Duration>,
        stop: &mut watch::Receiver<Order>,
        in_flight: Option<u32>,
    ) -> Result<Option<Arrived>, String> {
        let (mut rd, mut wr) = self.stream.split();
        let sleep = tokio::time::sleep(wait.unwrap_or(Duration::ZERO));
        tokio::select! {
            r = rd.read_buf(&mut self.inbuf) => match r {
                Ok(0) => return Err("the controller closed the connection".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading: {e}")),
            },
            r = wr.write_buf(&mut self.outbuf), if !self.outbuf.is_empty() => {
                r.map_err(|e| format!("writing: {e}"))?;
                return Ok(None);
            }
            _ = stop.changed() => return Ok(None),
            _ = sleep, if wait.is_some() => return Ok(None),
        }
        self.scan(in_flight).map(Some)
    }

    /// Counts the flow mods and packet-outs that arrived, and answers everything else as the
    /// emulated switch does.
    fn scan(&mut self, in_flight: Option<u32>) -> Result<Arrived, String> {
        let mut got = Arrived::default();
        while self.inbuf.len() >= 8 {
            let len = usize::from(u16::from_be_bytes([self.inbuf[2], self.inbuf[3]]));
            if len < 8 {
                return Err(format!("controller sent a message of length {len}"));
            }
            if self.inbuf.len() < len {
                self.inbuf.reserve(len - self.inbuf.len());
                break;
            }
            let msg = self.inbuf.split_to(len);
            match msg[1] {
                t if t == u8::from(MsgType::FlowMod) => {
                    got.flow_mods += 1;
                    if let Some(l) = &mut self.learned {
                        l.from_flow_mod(&msg);
                    }
                }
                t if t == u8::from(MsgType::PacketOut) => {
                    got.packet_outs += 1;
                    if let Some(l) = &mut self.learned {
                        l.from_packet_out(&msg);
                    }
                    got.answered |= in_flight.is_some() && packet_out_seq(&msg) == in_flight;
                }
                _ => match OfpMessage::parse(&msg) {
                    Ok(m) => self.sw.handle(m, &mut self.replies, &mut self.milestones),
                    Err(e) => return Err(format!("controller sent a malformed message: {e}")),
                },
            }
        }
        self.milestones.clear();
        for m in self.replies.drain(..) {
            m.emit(&mut self.outbuf);
        }
        if self.inbuf.is_empty() {
            self.inbuf.clear();
        }
        if self.inbuf.capacity() - self.inbuf.len() < 4096 {
            self.inbuf.reserve(65_536);
        }
        Ok(got)
    }
}

/// Seconds without any answer after which the learning phase ends (some controllers do not
/// answer every announcement).
const LEARN_QUIET: Duration = Duration::from_secs(2);
/// The hosts not known yet announce themselves again this often, as real hosts keep sending.
const REANNOUNCE: Duration = Duration::from_secs(1);
/// The learning phase lasts this long at most.
const LEARN_LIMIT: Duration = Duration::from_secs(10);

/// The learning phase: every host announces itself (a broadcast), again every second while
/// the controller has not shown it knows it, so that the measurement starts with every MAC
/// known, as cbench's does after its first round.
async fn learn(
    plan: SwitchPlan,
    wire: &mut Wire,
    template: &PacketInTemplate,
    stop: &mut watch::Receiver<Order>,
) -> Result<Learned, String> {
    for k in 0..plan.macs {
        template.put_announcement(&mut wire.outbuf, plan.index, k, plan.ports);
    }
    wire.learned = Some(HostsLearned::new(plan.index, plan.macs));
    let known = |w: &Wire| w.learned.as_ref().map_or(0, HostsLearned::count);
    let start = Instant::now();
    let (mut answers, mut last, mut announced) = (0u64, start, start);
    while known(wire) < plan.macs && last.elapsed() < LEARN_QUIET && start.elapsed() < LEARN_LIMIT {
        if announced.elapsed() >= REANNOUNCE && wire.outbuf.is_empty() {
            if let Some(hosts) = &wire.learned {
                for k in hosts.unknown() {
                    template.put_announcement(&mut wire.outbuf, plan.index, k, plan.ports);
                }
            }
            announced = Instant::now();
        }
        if let Some(a) = wire.exchange(Some(REANNOUNCE), stop, None).await? {
            if a.flow_mods + a.packet_outs > 0 {
                answers += a.flow_mods + a.packet_outs;
                last = Instant::now();
            }
        }
    }
    let hosts = wire.learned.take();
    Ok(Learned {
        answers,
        hosts: hosts.as_ref().map_or(0, HostsLearned::count),
        last: hosts.and_then(|h| h.last()),
    })
}

/// The measurement loop.
async fn pump(
    plan: SwitchPlan,
    wire: &mut Wire,
    template: &PacketInTemplate,
    orders: &mut watch::Receiver<Order>,
    counters: &Counters,
) -> Result<Vec<Duration>, (Vec<Duration>, String)> {
    let mut samples = Vec::new();
    let mut seq = plan.macs as u32;
    // Latency mode: the packet-in in flight and when it went.
    let mut in_flight: Option<(u32, Instant)> = None;
    loop {
        if *orders.borrow() == Order::Stop {
            return Ok(samples);
        }
        match plan.mode {
            ReactiveMode::Throughput if wire.outbuf.len() < OUT_BATCH * 64 => {
                for _ in 0..OUT_BATCH {
                    template.put(&mut wire.outbuf, plan.index, seq, plan.macs, plan.ports);
                    seq = seq.wrapping_add(1);
                }
                counters.packet_ins.fetch_add(OUT_BATCH as u64, Ordering::Relaxed);
            }
            ReactiveMode::Latency => {
                if let Some((_, at)) = in_flight {
                    if at.elapsed() >= LATENCY_TIMEOUT {
                        counters.lost.fetch_add(1, Ordering::Relaxed);
                        in_flight = None;
                    }
                }
                if in_flight.is_none() {
                    template.put(&mut wire.outbuf, plan.index, seq, plan.macs, plan.ports);
                    in_flight = Some((seq, Instant::now()));
                    seq = seq.wrapping_add(1);
                    counters.packet_ins.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
        let wait = (plan.mode == ReactiveMode::Latency).then_some(LATENCY_TIMEOUT);
        let got = match wire.exchange(wait, orders, in_flight.map(|(s, _)| s)).await {
            Ok(Some(got)) => got,
            Ok(None) => continue,
            Err(e) => return Err((samples, e)),
        };
        if got.answered {
            if let Some((_, at)) = in_flight.take() {
                if counters.measuring.load(Ordering::Relaxed) {
                    samples.push(at.elapsed());
                }
            }
        }
        if got.flow_mods > 0 {
            counters.flow_mods.fetch_add(got.flow_mods, Ordering::Relaxed);
        }
        if got.packet_outs > 0 {
            counters.packet_outs.fetch_add(got.packet_outs, Ordering::Relaxed);
        }
    }
}

/// The figures of one controller.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReactiveFigures {
    /// Which controller.
    pub controller: String,
    /// How the switches sent.
    pub mode: Option<ReactiveMode>,
    /// Emulated switches.
    pub switches: usize,
    /// Hosts (MACs) per switch.
    pub macs: usize,
    /// Switches handshaken before the start.
    pub handshaken: usize,
    /// Flow mods and packet-outs that answered the hosts' announcements (one per host).
    pub learn_responses: u64,
    /// Hosts the controller showed it knows by the end of the learning phase (a flow mod
    /// naming the host's MAC, or a packet-out carrying its frame).
    pub hosts_learned: usize,
    /// Those hosts per second, from the start until the last of them was known.
    pub hosts_learned_per_sec: Option<f64>,
    /// From the start until every switch was handshaken and had its hosts announced, ms
    /// (a controller that answers each announcement: hosts learned at this rate).
    pub learn_ms: Option<f64>,
    /// Switches that failed (before or during the measurement).
    pub failures: usize,
    /// The first failure's reason.
    pub first_error: Option<String>,
    /// Seconds of the measurement window (after the warm-up).
    pub seconds: f64,
    /// PACKET_INs sent in the window.
    pub packet_ins: u64,
    /// FLOW_MODs received in the window.
    pub flow_mods: u64,
    /// PACKET_OUTs received in the window.
    pub packet_outs: u64,
    /// FLOW_MODs and PACKET_OUTs per second: cbench's figure.
    pub responses_per_sec: f64,
    /// FLOW_MODs per second.
    pub flow_mods_per_sec: f64,
    /// PACKET_OUTs per second.
    pub packet_outs_per_sec: f64,
    /// Latency mode: packet-ins answered in the window (by the packet-out carrying them).
    pub answered: usize,
    /// Latency mode: packet-ins that went unanswered for a second.
    pub lost: u64,
    /// Latency mode: median packet-in to packet-out, microseconds.
    pub latency_p50_us: Option<f64>,
    /// 99th percentile of the above.
    pub latency_p99_us: Option<f64>,
    /// Mean of the above.
    pub latency_mean_us: Option<f64>,
    /// Controller CPU over the window, in cores (1.0: one core busy all the time).
    pub controller_cores: Option<f64>,
    /// The load generator's CPU (this process) over the window, in cores.
    pub generator_cores: Option<f64>,
    /// The machine's 1-minute load average at the end of the window.
    pub load_average: Option<f64>,
}

/// How long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Seconds the switches may take to handshake.
    pub handshake: Duration,
    /// Seconds of sending before counting starts (MACs learned, queues filled).
    pub warmup: Duration,
    /// Seconds counted.
    pub measure: Duration,
}

/// Measures one controller at `addr` (its process `pid`, for its CPU).
pub async fn measure(
    name: &str,
    addr: SocketAddr,
    pid: Option<u32>,
    plan: SwitchPlan,
    switches: usize,
    window: Window,
) -> ReactiveFigures {
    let counters = Arc::new(Counters::default());
    let (orders_tx, orders) = watch::channel(Order::Hold);
    let (ptx, mut prx) = mpsc::unbounded_channel();
    let tasks: Vec<_> = (0..switches)
        .map(|index| {
            let plan = SwitchPlan { index, ..plan };
            tokio::spawn(switch_task(plan, addr, orders.clone(), ptx.clone(), counters.clone()))
        })
        .collect();
    drop(ptx);
    let mut f = ReactiveFigures {
        controller: name.to_string(),
        mode: Some(plan.mode),
        switches,
        macs: plan.macs,
        ..ReactiveFigures::default()
    };
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + window.handshake;
    let mut errors = Vec::new();
    let mut last_learned: Option<Instant> = None;
    while f.handshaken + errors.len() < switches {
        match tokio::time::timeout_at(deadline, prx.recv()).await {
            Ok(Some(Progress::Ready(learned))) => {
                f.handshaken += 1;
                f.learn_responses += learned.answers;
                f.hosts_learned += learned.hosts;
                last_learned = last_learned.max(learned.last);
                if f.handshaken == switches {
                    f.learn_ms = Some(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            Ok(Some(Progress::Failed(e))) => errors.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    if let Some(last) = last_learned {
        let secs = last.saturating_duration_since(start).as_secs_f64();
        f.hosts_learned_per_sec = (secs > 0.0).then(|| f.hosts_learned as f64 / secs);
    }
    if f.handshaken < switches && errors.is_empty() {
        errors.push(format!("not handshaken within {} s", window.handshake.as_secs()));
    }
    let mut samples = Vec::new();
    if f.handshaken > 0 {
        let _ = orders_tx.send(Order::Go);
        tokio::time::sleep(window.warmup).await;
        let (c0, g0, s0) = (pid.and_then(super::run::cpu_ticks), own_cpu(), counters.snapshot());
        counters.measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(window.measure).await;
        counters.measuring.store(false, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        let (c1, g1, s1) = (pid.and_then(super::run::cpu_ticks), own_cpu(), counters.snapshot());
        let ticks = super::run::clock_ticks() as f64;
        f.seconds = secs;
        f.packet_ins = s1.packet_ins - s0.packet_ins;
        f.flow_mods = s1.flow_mods - s0.flow_mods;
        f.packet_outs = s1.packet_outs - s0.packet_outs;
        f.lost = s1.lost - s0.lost;
        f.flow_mods_per_sec = f.flow_mods as f64 / secs;
        f.packet_outs_per_sec = f.packet_outs as f64 / secs;
        f.responses_per_sec = (f.flow_mods + f.packet_outs) as f64 / secs;
        if let (Some(a), Some(b)) = (c0, c1) {
            f.controller_cores = Some(b.saturating_sub(a) as f64 / ticks / secs);
        }
        if let (Some(a), Some(b)) = (g0, g1) {
            f.generator_cores = Some(b.saturating_sub(a) as f64 / ticks / secs);
        }
        f.load_average = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
    }
    let _ = orders_tx.send(Order::Stop);
    for t in tasks {
        if let Ok(s) = t.await {
            samples.extend(s);
        }
    }
    while let Ok(p) = prx.try_recv() {
        if let Progress::Failed(e) = p {
            errors.push(e);
        }
    }
    f.failures = errors.len().max(switches - f.handshaken);
    f.first_error = errors.into_iter().next();
    samples.sort();
    f.answered = samples.len();
    let us = |v: Option<f64>| v.map(|ms| ms * 1e3);
    f.latency_p50_us = us(percentile_ms(&samples, 50.0));
    f.latency_p99_us = us(percentile_ms(&samples, 99.0));
    if !samples.is_empty() {
        let total: Duration = samples.iter().sum();
        f.latency_mean_us = Some(total.as_secs_f64() * 1e6 / samples.len() as f64);
    }
    f
}

/// This process's CPU time in clock ticks.
fn own_cpu() -> Option<u64> {
    super::run::cpu_ticks(std::process::id())
}

/// Prints the figures side by side, and each peer's ratio to the first.
pub fn print_table(all: &[ReactiveFigures]) {
    type Cell = Box<dyn Fn(&ReactiveFigures) -> String>;
    let opt =
        |v: Option<f64>, p: usize| v.map(|x| format!("{x:.p$}")).unwrap_or_else(|| "-".into());
    let rows: Vec<(&str, Cell)> = vec![
        ("mode", Box::new(|f| format!("{:?}", f.mode.unwrap_or(ReactiveMode::Throughput)))),
        ("switches x MACs", Box::new(|f| format!("{} x {}", f.switches, f.macs))),
        ("handshaken", Box::new(|f| f.handshaken.to_string())),
        ("failures", Box::new(|f| f.failures.to_string())),
        (
            "learning: answers, ms",
            Box::new(move |f| format!("{}, {}", f.learn_responses, opt(f.learn_ms, 0))),
        ),
        (
            "hosts learned, per s",
            Box::new(move |f| format!("{}, {}", f.hosts_learned, opt(f.hosts_learned_per_sec, 0))),
        ),
        ("window s", Box::new(|f| format!("{:.1}", f.seconds))),
        ("packet-ins sent", Box::new(|f| f.packet_ins.to_string())),
        ("responses/s", Box::new(|f| format!("{:.0}", f.responses_per_sec))),
        ("flow mods/s", Box::new(|f| format!("{:.0}", f.flow_mods_per_sec))),
        ("packet outs/s", Box::new(|f| format!("{:.0}", f.packet_outs_per_sec))),
        ("answered (latency)", Box::new(|f| format!("{} ({} lost)", f.answered, f.lost))),
        (
            "latency p50/p99 us",
            Box::new(move |f| format!("{}/{}", opt(f.latency_p50_us, 0), opt(f.latency_p99_us, 0))),
        ),
        ("controller cores", Box::new(move |f| opt(f.controller_cores, 2))),
        ("generator cores", Box::new(move |f| opt(f.generator_cores, 2))),
        ("load average", Box::new(move |f| opt(f.load_average, 1))),
    ];
    print!("{:<22}", "");
    for f in all {
        print!(" {:>20}", f.controller);
    }
    println!();
    for (label, cell) in &rows {
        print!("{label:<22}");
        for f in all {
            print!(" {:>20}", cell(f));
        }
        println!();
    }
    if let Some((p, peers)) = all.split_first() {
        for o in peers {
            if o.responses_per_sec > 0.0 {
                println!(
                    "responses/s: {} {:.1}x {}",
                    p.controller,
                    p.responses_per_sec / o.responses_per_sec,
                    o.controller
                );
            }
            if let (Some(a), Some(b)) = (p.latency_p50_us, o.latency_p50_us) {
                println!("latency p50: {} {:.1}x lower than {}", p.controller, b / a, o.controller);
            }
        }
    }
    for f in all {
        if let Some(e) = &f.first_error {
            println!("{}: first failure: {e}", f.controller);
        }
    }
}

#[cfg(test)]
mod tests {
    use periscope_codec::openflow::{Action, FlowMod, MacAddr, PacketOut};

    use super::*;

    #[test]
    fn packet_ins_parse_with_the_fields_patched_in() {
        let t = PacketInTemplate::new(None);
        let mut buf = BytesMut::new();
        t.put(&mut buf, 3, 41, 10, 4);
        t.put(&mut buf, 3, 42, 10, 4);
        let n = buf.len() / 2;
        let m = OfpMessage::parse(&buf[n..]).expect("packet-in parses");
        assert_eq!(m.xid, Xid(42));
        let Message::PacketIn(p) = m.msg else { panic!("{m:?}") };
        // Host 2 (42 % 10) behind port 3, to host 3.
        assert_eq!(p.in_port(), Some(PortNo(3)));
        assert_eq!(p.data[..6], host_mac(3, 3));
        assert_eq!(p.data[6..12], host_mac(3, 2));
        assert_eq!(p.data.len(), FRAME_LEN);
        assert_eq!(p.buffer_id, BufferId::NO_BUFFER);
    }

    #[test]
    fn a_packet_out_carries_the_sequence_back() {
        let t = PacketInTemplate::new(None);
        let mut buf = BytesMut::new();
        t.put(&mut buf, 0, 7, 5, 2);
        let Message::PacketIn(p) = OfpMessage::parse(&buf).expect("parses").msg else {
            panic!("not a packet-in")
        };
        let po = periscope_codec::openflow::PacketOut {
            buffer_id: BufferId::NO_BUFFER,
            in_port: PortNo(1),
            actions: vec![periscope_codec::openflow::Action::output(PortNo::FLOOD)],
            data: p.data.clone(),
        };
        let bytes = OfpMessage::new(Xid(9), Message::PacketOut(po)).to_vec();
        assert_eq!(packet_out_seq(&bytes), Some(7));
        assert_eq!(packet_out_seq(&bytes[..30]), None);
    }

    #[test]
    fn tagged_frames_carry_the_vlan_and_the_sequence_back() {
        let t = PacketInTemplate::new(Some(FAUCET_VID));
        let mut buf = BytesMut::new();
        t.put(&mut buf, 1, 9, 5, 2);
        let Message::PacketIn(p) = OfpMessage::parse(&buf).expect("parses").msg else {
            panic!("not a packet-in")
        };
        assert_eq!(p.data[12..14], [0x81, 0x00]);
        assert_eq!(u16::from_be_bytes([p.data[14], p.data[15]]), FAUCET_VID);
        assert_eq!(p.data[16..18], ETHERTYPE.to_be_bytes());
        assert_eq!(p.data.len(), FRAME_LEN);
        let po = PacketOut {
            buffer_id: BufferId::NO_BUFFER,
            in_port: PortNo(1),
            actions: vec![Action::output(PortNo::FLOOD)],
            data: p.data.clone(),
        };
        let bytes = OfpMessage::new(Xid(3), Message::PacketOut(po)).to_vec();
        assert_eq!(packet_out_seq(&bytes), Some(9));
    }

    #[test]
    fn faucet_knows_every_switch_and_port() {
        let y = faucet_yaml(2, 3, 1000);
        assert!(y.contains("dp_id: 0xbe00000000000001") && y.contains("dp_id: 0xbe00000000000002"));
        assert_eq!(y.matches("native_vlan: bench").count(), 6);
        assert!(y.contains("    max_hosts: 1000\n"), "{y}");
        assert_eq!(y.matches("        max_hosts: 334\n").count(), 6, "{y}");
    }

    #[test]
    fn hosts_are_known_from_the_flow_mods_and_packet_outs_that_name_them() {
        let mut hosts = HostsLearned::new(3, 4);
        let fm = FlowMod {
            matches: Match::new([OxmField::EthDst(MacAddr(host_mac(3, 1)), None)]),
            ..FlowMod::default()
        };
        hosts.from_flow_mod(&OfpMessage::new(Xid(1), Message::FlowMod(fm.into())).to_vec());
        let mut frame = vec![0; FRAME_LEN];
        frame[6..12].copy_from_slice(&host_mac(3, 2));
        let po = PacketOut {
            buffer_id: BufferId::NO_BUFFER,
            in_port: PortNo(1),
            actions: vec![Action::Output { port: PortNo::FLOOD, max_len: 0 }],
            data: frame,
        };
        let po = OfpMessage::new(Xid(2), Message::PacketOut(po)).to_vec();
        hosts.from_packet_out(&po);
        hosts.from_packet_out(&po);
        // Another switch's host, and one past this switch's hosts, are not counted.
        hosts.see(&host_mac(4, 0));
        hosts.see(&host_mac(3, 4));
        assert_eq!(hosts.count(), 2);
        assert_eq!(hosts.unknown().collect::<Vec<_>>(), [0, 3]);
        assert!(hosts.last().is_some());
    }

    #[test]
    fn hosts_are_unicast_and_distinct() {
        assert_ne!(host_mac(1, 2), host_mac(2, 1));
        assert_eq!(host_mac(7, 0x10203)[0] & 1, 0);
        assert_eq!((host_port(0, 4), host_port(5, 4), host_port(3, 0)), (1, 2, 1));
    }
}
