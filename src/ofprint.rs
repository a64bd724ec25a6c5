//! `periscope ofp-print`: decodes OpenFlow 1.3 messages (one, or several back to back) and
//! prints them as `ovs-ofctl -O OpenFlow13 ofp-print` does, or as JSON.
//!
//! The text follows Open vSwitch 3.1: a header line `OFPT_FLOW_MOD (OF1.3) (xid=0x1): ...`,
//! flows in `dump-flows` syntax (printed by [`crate::codec::openflow::ofctl`]), errors by their
//! OVS names, the request inside an error decoded when it is whole. Input is hex (whitespace
//! and `0x` prefixes ignored) from the arguments or stdin, or raw bytes from stdin (`--raw`).
//! A malformed message stops the output with an error naming the byte offset in the input.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Args;
use thiserror::Error;

use crate::codec::openflow::async_config::RoleMasks;
use crate::codec::openflow::bundle::{BUNDLE_ATOMIC, BUNDLE_ORDERED};
use crate::codec::openflow::features::CAPABILITY_NAMES;
use crate::codec::openflow::flow_mod::{
    FLOW_MOD_CHECK_OVERLAP, FLOW_MOD_NO_BYT_COUNTS, FLOW_MOD_NO_PKT_COUNTS, FLOW_MOD_RESET_COUNTS,
    FLOW_MOD_SEND_FLOW_REM,
};
use crate::codec::openflow::meter::{
    METER_FLAG_BURST, METER_FLAG_KBPS, METER_FLAG_PKTPS, METER_FLAG_STATS,
};
use crate::codec::openflow::multipart::MULTIPART_MORE;
use crate::codec::openflow::ofctl::{ActionList, InstructionList};
use crate::codec::openflow::switch_config::{FRAG_DROP, FRAG_NORMAL, FRAG_REASM};
use crate::codec::openflow::table::TableFeatureProp;
use crate::codec::openflow::{
    frame_len, AsyncConfig, Bucket, ControllerRole, DecodeError, ErrorType, FlowMod,
    FlowModCommand, GroupDesc, GroupType, HelloElement, Match, Message, MeterBand, MsgType,
    MultipartReplyBody, MultipartRequestBody, MultipartType, OfpMessage, Port, PortNo,
    TableFeatures, TableStats, HEADER_LEN,
};

/// Arguments of `periscope ofp-print`.
#[derive(Debug, Args)]
pub struct OfpPrintArgs {
    /// The messages in hex (whitespace and `0x` prefixes are ignored; several arguments are
    /// joined). Without any, hex is read from stdin.
    pub hex: Vec<String>,
    /// Read raw binary bytes from stdin instead of hex.
    #[arg(long)]
    pub raw: bool,
    /// Print each message as one line of JSON (the decoded value) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `periscope ofp-print`: prints every message, then fails on the first malformed one.
pub fn run(args: OfpPrintArgs) -> anyhow::Result<ExitCode> {
    let bytes = if args.raw {
        if !args.hex.is_empty() {
            bail!("--raw reads binary from stdin: give no HEX arguments with it");
        }
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).context("reading stdin")?;
        b
    } else if args.hex.is_empty() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading hex from stdin")?;
        parse_hex(&text)?
    } else {
        parse_hex(&args.hex.join(" "))?
    };
    if bytes.is_empty() {
        bail!("no input: give the messages as hex, or pipe them in (--raw for binary)");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (n, item) in Frames::new(&bytes).enumerate() {
        match item {
            Ok((_, msg)) => {
                let text = if args.json { serde_json::to_string(&msg)? } else { format(&msg) };
                writeln!(out, "{text}")?;
            }
            Err(e) => {
                out.flush()?;
                return Err(anyhow!("message {} at input offset {}: {e}", n + 1, e.offset()));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Hex text that is not a whole number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HexError {
    /// A character that is neither a hex digit nor whitespace.
    #[error("`{ch}` at character {pos} is not a hex digit (expected 0-9, a-f, whitespace)")]
    BadChar {
        /// The character.
        ch: char,
        /// Its position (in characters) in the text.
        pos: usize,
    },
    /// An odd number of digits: the last byte lacks its second digit.
    #[error("odd number of hex digits ({digits}): byte {offset} has only one digit")]
    OddDigits {
        /// Digits found.
        digits: usize,
        /// Offset of the incomplete byte.
        offset: usize,
    },
}

/// Reads hex text into bytes; whitespace and `0x` prefixes of words are ignored.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0;
    let mut chars = text.chars().enumerate().peekable();
    let mut word_start = true;
    while let Some((pos, ch)) = chars.next() {
        if ch.is_whitespace() {
            word_start = true;
            continue;
        }
        if word_start && ch == '0' && matches!(chars.peek(), Some((_, 'x' | 'X'))) {
            chars.next();
            word_start = false;
            continue;
        }
        word_start = false;
        let d = ch.to_digit(16).ok_or(HexError::BadChar { ch, pos })? as u8;
        digits += 1;
        match high.take() {
            None => high = Some(d),
            Some(h) => out.push(h << 4 | d),
        }
    }
    if high.is_some() {
        return Err(HexError::OddDigits { digits, offset: out.len() });
    }
    Ok(out)
}

/// The messages of a byte stream, in order, each with its offset; stops after the first error,
/// whose offset counts from the start of the stream.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    /// The messages in `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Frames { data, pos: 0, done: false }
    }
}

impl Iterator for Frames<'_> {
    type Item = Result<(usize, OfpMessage), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let at = self.pos;
        let r = match frame_len(rest, usize::from(u16::MAX)) {
            Ok(None) => Err(DecodeError::Truncated {
                what: "header",
                offset: 0,
                need: HEADER_LEN,
                have: rest.len(),
            }),
            Ok(Some(len)) => {
                self.pos += len.min(rest.len());
                OfpMessage::parse(&rest[..len.min(rest.len())])
            }
            Err(e) => Err(e),
        };
        match r {
            Ok(m) => Some(Ok((at, m))),
            Err(e) => {
                self.done = true;
                Some(Err(e.shifted(at)))
            }
        }
    }
}

/// The message as `ovs-ofctl -O OpenFlow13 ofp-print` shows it (without a final newline).
pub fn format(m: &OfpMessage) -> String {
    let mut s = header(m);
    body(&mut s, m);
    while s.ends_with('\n') {
        s.pop();
    }
    s
}

fn version_name(v: u8) -> String {
    match v {
        1..=6 => format!("OF1.{}", v - 1),
        _ => format!("OF{v:#04x}"),
    }
}

fn header(m: &OfpMessage) -> String {
    let name = match &m.msg {
        Message::MultipartRequest(r) => format!("{} request", stats_name(r.body.mp_type())),
        Message::MultipartReply(r) => format!("{} reply", stats_name(r.body.mp_type())),
        Message::BundleControl(_) => "ONFT_BUNDLE_CONTROL".into(),
        Message::BundleAdd(_) => "ONFT_BUNDLE_ADD_MESSAGE".into(),
        other => match other.msg_type() {
            MsgType::Unknown(t) => format!("OFPT_UNKNOWN (type {t})"),
            t => t.name().unwrap_or("OFPT_UNKNOWN").to_string(),
        },
    };
    format!("{name} ({}) (xid={:#x}):", version_name(m.version), m.xid.0)
}

fn stats_name(t: MultipartType) -> String {
    let s = match t {
        MultipartType::Desc => "DESC",
        MultipartType::Flow => "FLOW",
        MultipartType::Aggregate => "AGGREGATE",
        MultipartType::Table => "TABLE",
        MultipartType::PortStats => "PORT",
        MultipartType::Queue => "QUEUE",
        MultipartType::Group => "GROUP",
        MultipartType::GroupDesc => "GROUP_DESC",
        MultipartType::GroupFeatures => "GROUP_FEATURES",
        MultipartType::Meter => "METER",
        MultipartType::MeterConfig => "METER_CONFIG",
        MultipartType::MeterFeatures => "METER_FEATURES",
        MultipartType::TableFeatures => "TABLE_FEATURES",
        MultipartType::PortDesc => "PORT_DESC",
        MultipartType::Experimenter => "EXPERIMENTER",
        other => return format!("OFPST_UNKNOWN ({})", u16::from(other)),
    };
    format!("OFPST_{s}")
}

fn body(s: &mut String, m: &OfpMessage) {
    match &m.msg {
        Message::Hello(h) => {
            let mut versions = Vec::new();
            let mut bitmap = false;
            for e in &h.elements {
                match e {
                    HelloElement::VersionBitmap(words) => {
                        bitmap = true;
                        for (i, w) in words.iter().enumerate() {
                            for b in 0..32 {
                                if w & (1 << b) != 0 {
                                    versions.push(i * 32 + b);
                                }
                            }
                        }
                    }
                    HelloElement::Unknown { elem_type, data } => {
                        let _ =
                            write!(s, "\n unknown element type {elem_type} ({} bytes)", data.len());
                    }
                    _ => {}
                }
            }
            if !bitmap {
                versions = (1..=usize::from(m.version)).collect();
            }
            let v: Vec<String> = versions.iter().map(|v| format!("{v:#04x}")).collect();
            let _ = write!(s, "\n version bitmap: {}", v.join(", "));
        }
        Message::Error(e) => {
            let _ = write!(s, " {e}");
            if e.err_type != ErrorType::HelloFailed && !e.data.is_empty() {
                s.push('\n');
                match OfpMessage::parse(&e.data) {
                    Ok(inner) => s.push_str(&format(&inner)),
                    Err(_) => hex_dump(s, &e.data),
                }
            }
        }
        Message::EchoRequest(d) | Message::EchoReply(d) => {
            let _ = write!(s, " {} bytes of payload", d.len());
            if !d.is_empty() {
                s.push('\n');
                hex_dump(s, d);
            }
        }
        Message::Experimenter(e) => {
            let _ = write!(s, " experimenter={:#010x} exp_type={}", e.experimenter, e.exp_type);
            if !e.data.is_empty() {
                s.push('\n');
                hex_dump(s, &e.data);
            }
        }
        Message::FeaturesReply(f) => {
            let _ = write!(
                s,
                " dpid:{:016x}\nn_tables:{}, n_buffers:{}",
                f.datapath_id.0, f.n_tables, f.n_buffers
            );
            if f.auxiliary_id != 0 {
                let _ = write!(s, ", auxiliary_id:{}", f.auxiliary_id);
            }
            s.push_str("\ncapabilities:");
            for (bit, name) in CAPABILITY_NAMES {
                if f.capabilities & bit != 0 {
                    let _ = write!(s, " {name}");
                }
            }
        }
        Message::GetConfigReply(c) | Message::SetConfig(c) => {
            let frags = match c.flags & 3 {
                FRAG_NORMAL => "normal",
                FRAG_DROP => "drop",
                FRAG_REASM => "reassemble",
                _ => "nx-match",
            };
            let _ = write!(s, " frags={frags} miss_send_len={}", c.miss_send_len);
        }
        Message::PacketIn(p) => {
            if p.table_id.0 != 0 {
                let _ = write!(s, " table_id={}", p.table_id.0);
            }
            if p.cookie.0 != u64::MAX {
                let _ = write!(s, " cookie={:#x}", p.cookie.0);
            }
            let _ = write!(s, " total_len={}", p.total_len);
            let m = p.matches.to_string();
            if !m.is_empty() {
                let _ = write!(s, " {m}");
            }
            let reason =
                p.reason.name().map_or_else(|| format!("{}", u8::from(p.reason)), String::from);
            let _ = write!(s, " (via {reason}) data_len={}", p.data.len());
            buffer(s, p.buffer_id.0);
            packet_line(s, &p.data);
        }
        Message::FlowRemoved(r) => {
            let _ = write!(s, " {}", with_priority(r.priority, &r.matches));
            let reason =
                r.reason.name().map_or_else(|| u8::from(r.reason).to_string(), String::from);
            let _ = write!(
                s,
                " reason={reason} table_id={} cookie:{:#x} duration{}.{:09}s",
                r.table_id.0, r.cookie.0, r.duration_sec, r.duration_nsec
            );
            if r.idle_timeout != 0 {
                let _ = write!(s, " idle{}", r.idle_timeout);
            }
            if r.hard_timeout != 0 {
                let _ = write!(s, " hard{}", r.hard_timeout);
            }
            let _ = write!(s, " pkts{} bytes{}", r.packet_count, r.byte_count);
        }
        Message::PortStatus(p) => {
            let reason =
                p.reason.name().map_or_else(|| u8::from(p.reason).to_string(), String::from);
            let _ = write!(s, " {reason}:");
            port(s, &p.desc);
        }
        Message::PacketOut(p) => {
            let _ = write!(s, " in_port={} actions={}", p.in_port, action_text(&p.actions));
            let _ = write!(s, " data_len={}", p.data.len());
            buffer(s, p.buffer_id.0);
            packet_line(s, &p.data);
        }
        Message::FlowMod(f) => {
            s.push(' ');
            flow_mod(s, f);
        }
        Message::GroupMod(g) => {
            let cmd =
                g.command.name().map_or_else(|| u16::from(g.command).to_string(), String::from);
            let _ = write!(s, "\n {cmd} ");
            group(s, g.group_id.0, g.group_type, &g.buckets);
        }
        Message::PortMod(p) => {
            let _ = write!(s, " port: {}: addr:{}", p.port_no, p.hw_addr);
            let _ = write!(s, "\n     config: {}", bits(p.config, PORT_CONFIG));
            let _ = write!(s, "\n     mask:   {}", bits(p.mask, PORT_CONFIG));
            if p.advertise == 0 {
                s.push_str("\n     advertise: UNCHANGED");
            } else {
                let _ = write!(s, "\n     advertise: {}", bits(p.advertise, PORT_FEATURES));
            }
        }
        Message::TableMod(t) => {
            let _ = write!(s, " table_id={}", table_name(t.table_id.0));
            if t.config != 0 {
                let _ = write!(s, " config={:#x}", t.config);
            }
        }
        Message::MultipartRequest(r) => {
            if r.flags & MULTIPART_MORE != 0 {
                s.push_str(" flags=[more]");
            }
            mp_request(s, &r.body);
        }
        Message::MultipartReply(r) => {
            if r.flags & MULTIPART_MORE != 0 {
                s.push_str(" flags=[more]");
            }
            mp_reply(s, &r.body);
        }
        Message::QueueGetConfigRequest(q) => {
            let _ = write!(s, " port={}", q.port);
        }
        Message::QueueGetConfigReply(q) => {
            if !q.queues.is_empty() {
                let _ = write!(s, " port={}", q.port);
            }
            for pq in &q.queues {
                let _ = write!(s, "\nqueue {}:", pq.queue_id.0);
                for p in &pq.properties {
                    let _ = write!(s, " {}", queue_prop(p));
                }
            }
        }
        Message::RoleRequest(r) | Message::RoleReply(r) => {
            let role = match r.role {
                ControllerRole::NoChange => "nochange",
                ControllerRole::Equal => "equal",
                ControllerRole::Master => "primary",
                ControllerRole::Slave => "secondary",
                _ => "unknown",
            };
            let _ = write!(s, " role={role}");
            if r.role != ControllerRole::NoChange {
                let _ = write!(s, " generation_id={}", r.generation_id);
            }
        }
        Message::GetAsyncReply(a) | Message::SetAsync(a) => async_config(s, a),
        Message::MeterMod(mm) => {
            let cmd =
                mm.command.name().map_or_else(|| u16::from(mm.command).to_string(), String::from);
            let _ = write!(s, " {cmd} ");
            meter(s, mm.meter_id.0, mm.flags, &mm.bands);
        }
        Message::BundleControl(b) => {
            let t =
                b.ctrl_type.name().map_or_else(|| u16::from(b.ctrl_type).to_string(), String::from);
            let _ =
                write!(s, "\n bundle_id={} type={t} flags={}", b.bundle_id, bundle_flags(b.flags));
            if !b.properties.is_empty() {
                let _ = write!(s, " properties={}", b.properties.len());
            }
        }
        Message::BundleAdd(b) => {
            let _ = write!(s, "\n bundle_id={} flags={}", b.bundle_id, bundle_flags(b.flags));
            let _ = write!(s, "\n{}", format(&b.message));
        }
        Message::Unknown { body, .. } => {
            let _ = write!(s, " {} bytes", body.len());
            if !body.is_empty() {
                s.push('\n');
                hex_dump(s, body);
            }
        }
        // FEATURES_REQUEST, GET_CONFIG_REQUEST, BARRIER_*, GET_ASYNC_REQUEST: header only.
        _ => {}
    }
}

/// `priority=N,` before the match unless the priority is the default, as `match_format` does.
fn with_priority(priority: u16, m: &Match) -> String {
    let text = m.to_string();
    match (priority == 0x8000, text.is_empty()) {
        (true, _) => text,
        (false, true) => format!("priority={priority}"),
        (false, false) => format!("priority={priority},{text}"),
    }
}

fn action_text(actions: &[crate::codec::openflow::Action]) -> String {
    if actions.is_empty() {
        "drop".into()
    } else {
        ActionList(actions).to_string()
    }
}

fn buffer(s: &mut String, id: u32) {
    if id == u32::MAX {
        s.push_str(" (unbuffered)");
    } else {
        let _ = write!(s, " buffer={id:#010x}");
    }
}

const FLOW_FLAGS: &[(u32, &str)] = &[
    (FLOW_MOD_SEND_FLOW_REM as u32, "send_flow_rem"),
    (FLOW_MOD_CHECK_OVERLAP as u32, "check_overlap"),
    (FLOW_MOD_RESET_COUNTS as u32, "reset_counts"),
    (FLOW_MOD_NO_PKT_COUNTS as u32, "no_packet_counts"),
    (FLOW_MOD_NO_BYT_COUNTS as u32, "no_byte_counts"),
];

/// `ofputil_flow_mod_format`: `ADD table:1 priority=100,tcp,... cookie:0x5 idle:10 actions=...`.
fn flow_mod(s: &mut String, f: &FlowMod) {
    let cmd = match f.command {
        FlowModCommand::Add => "ADD".to_string(),
        FlowModCommand::Modify => "MOD".into(),
        FlowModCommand::ModifyStrict => "MOD_STRICT".into(),
        FlowModCommand::Delete => "DEL".into(),
        FlowModCommand::DeleteStrict => "DEL_STRICT".into(),
        other => format!("cmd:{}", u8::from(other)),
    };
    s.push_str(&cmd);
    if f.table_id.0 != 0 {
        let _ = write!(s, " table:{}", f.table_id.0);
    }
    let m = with_priority(f.priority, &f.matches);
    if !m.is_empty() {
        let _ = write!(s, " {m}");
    }
    if f.cookie_mask != 0 {
        let _ = write!(s, " cookie:{:#x}/{:#x}", f.cookie.0, f.cookie_mask);
    } else if f.command == FlowModCommand::Add && f.cookie.0 != 0 {
        let _ = write!(s, " cookie:{:#x}", f.cookie.0);
    }
    if f.idle_timeout != 0 {
        let _ = write!(s, " idle:{}", f.idle_timeout);
    }
    if f.hard_timeout != 0 {
        let _ = write!(s, " hard:{}", f.hard_timeout);
    }
    if f.buffer_id.0 != u32::MAX {
        let _ = write!(s, " buf:{:#x}", f.buffer_id.0);
    }
    if f.out_port != PortNo::ANY {
        let _ = write!(s, " out_port:{}", f.out_port);
    }
    let deleting = matches!(f.command, FlowModCommand::Delete | FlowModCommand::DeleteStrict);
    if deleting && f.out_group.0 != u32::MAX {
        let _ = write!(s, " out_group:{}", f.out_group.0);
    }
    for (bit, name) in FLOW_FLAGS {
        if u32::from(f.flags) & bit != 0 {
            let _ = write!(s, " {name}");
        }
    }
    let _ = write!(s, " actions={}", InstructionList(&f.instructions));
}

const PORT_CONFIG: &[(u32, &str)] =
    &[(1, "PORT_DOWN"), (1 << 2, "NO_RECV"), (1 << 5, "NO_FWD"), (1 << 6, "NO_PACKET_IN")];
const PORT_STATE: &[(u32, &str)] = &[(1, "LINK_DOWN"), (1 << 1, "BLOCKED"), (1 << 2, "LIVE")];
const PORT_FEATURES: &[(u32, &str)] = &[
    (1, "10MB-HD"),
    (1 << 1, "10MB-FD"),
    (1 << 2, "100MB-HD"),
    (1 << 3, "100MB-FD"),
    (1 << 4, "1GB-HD"),
    (1 << 5, "1GB-FD"),
    (1 << 6, "10GB-FD"),
    (1 << 7, "40GB-FD"),
    (1 << 8, "100GB-FD"),
    (1 << 9, "1TB-FD"),
    (1 << 10, "OTHER"),
    (1 << 11, "COPPER"),
    (1 << 12, "FIBER"),
    (1 << 13, "AUTO_NEG"),
    (1 << 14, "AUTO_PAUSE"),
    (1 << 15, "AUTO_PAUSE_ASYM"),
];

/// Bit names separated by spaces, unknown bits in hex, `0` when none is set.
fn bits(v: u32, names: &[(u32, &str)]) -> String {
    let mut out: Vec<String> =
        names.iter().filter(|(b, _)| v & b != 0).map(|(_, n)| (*n).to_string()).collect();
    let unknown = v & !names.iter().fold(0, |a, (b, _)| a | b);
    if unknown != 0 {
        out.push(format!("{unknown:#x}"));
    }
    if out.is_empty() {
        "0".into()
    } else {
        out.join(" ")
    }
}

/// One port as `ofputil_phy_port` prints it, starting on the current line.
fn port(s: &mut String, p: &Port) {
    let _ = write!(s, " {}({}): addr:{}", p.port_no, p.name, p.hw_addr);
    let _ = write!(s, "\n     config:     {}", bits(p.config, PORT_CONFIG));
    let _ = write!(s, "\n     state:      {}", bits(p.state, PORT_STATE));
    for (label, v) in [
        ("current:   ", p.curr),
        ("advertised:", p.advertised),
        ("supported: ", p.supported),
        ("peer:      ", p.peer),
    ] {
        if v != 0 {
            let _ = write!(s, "\n     {label} {}", bits(v, PORT_FEATURES));
        }
    }
    let _ = write!(
        s,
        "\n     speed: {} Mbps now, {} Mbps max",
        p.curr_speed / 1000,
        p.max_speed / 1000
    );
}

fn table_name(t: u8) -> String {
    if t == 0xff {
        "all".into()
    } else {
        t.to_string()
    }
}

fn group_type(t: GroupType) -> String {
    t.name().map_or_else(|| u8::from(t).to_string(), String::from)
}

/// `group_id=10,type=select,bucket=weight:100,actions=output:1`.
fn group(s: &mut String, id: u32, t: GroupType, buckets: &[Bucket]) {
    let _ = write!(s, "group_id={id},type={}", group_type(t));
    for b in buckets {
        s.push_str(",bucket=");
        if t == GroupType::Select {
            let _ = write!(s, "weight:{},", b.weight);
        }
        if b.watch_port != PortNo::ANY {
            let _ = write!(s, "watch_port:{},", b.watch_port);
        }
        if b.watch_group.0 != u32::MAX {
            let _ = write!(s, "watch_group:{},", b.watch_group.0);
        }
        let _ = write!(s, "actions={}", action_text(&b.actions));
    }
}

const METER_FLAGS: &[(u32, &str)] = &[
    (METER_FLAG_KBPS as u32, "kbps"),
    (METER_FLAG_PKTPS as u32, "pktps"),
    (METER_FLAG_BURST as u32, "burst"),
    (METER_FLAG_STATS as u32, "stats"),
];

/// `meter=1 kbps stats bands=` then one line per band.
fn meter(s: &mut String, id: u32, flags: u16, bands: &[MeterBand]) {
    let _ = write!(s, "meter={id}");
    for (bit, name) in METER_FLAGS {
        if u32::from(flags) & bit != 0 {
            let _ = write!(s, " {name}");
        }
    }
    s.push_str(" bands=");
    let burst = flags & METER_FLAG_BURST != 0;
    for b in bands {
        let (name, rate, burst_size) = match b {
            MeterBand::Drop { rate, burst_size } => ("drop".to_string(), rate, burst_size),
            MeterBand::DscpRemark { rate, burst_size, .. } => {
                ("dscp_remark".to_string(), rate, burst_size)
            }
            MeterBand::Experimenter { rate, burst_size, experimenter, .. } => {
                (format!("experimenter({experimenter:#x})"), rate, burst_size)
            }
            MeterBand::Unknown { band_type, rate, burst_size, .. } => {
                (format!("{band_type}"), rate, burst_size)
            }
            _ => ("?".to_string(), &0, &0),
        };
        let _ = write!(s, "\ntype={name} rate={rate}");
        if burst {
            let _ = write!(s, " burst_size={burst_size}");
        }
        if let MeterBand::DscpRemark { prec_level, .. } = b {
            let _ = write!(s, " prec_level={prec_level}");
        }
    }
}

fn bundle_flags(f: u16) -> String {
    let mut v = Vec::new();
    if f & BUNDLE_ATOMIC != 0 {
        v.push("atomic".to_string());
    }
    if f & BUNDLE_ORDERED != 0 {
        v.push("ordered".to_string());
    }
    let rest = f & !(BUNDLE_ATOMIC | BUNDLE_ORDERED);
    if rest != 0 {
        v.push(format!("{rest:#x}"));
    }
    if v.is_empty() {
        "0".into()
    } else {
        v.join(" ")
    }
}

fn async_config(s: &mut String, a: &AsyncConfig) {
    const PACKET_IN: &[(u32, &str)] = &[(1, "no_match"), (2, "action"), (4, "invalid_ttl")];
    const PORT_STATUS: &[(u32, &str)] = &[(1, "add"), (2, "delete"), (4, "modify")];
    const FLOW_REMOVED: &[(u32, &str)] = &[
        (1, "idle"),
        (2, "hard"),
        (4, "delete"),
        (8, "group_delete"),
        (16, "meter_delete"),
        (32, "eviction"),
    ];
    let line = |s: &mut String, label: &str, v: u32, names: &[(u32, &str)]| {
        let text = if v == 0 { "(off)".to_string() } else { bits(v, names) };
        let _ = write!(s, "\n{label:>16}: {text}");
    };
    let pick = |m: &RoleMasks, primary: bool| if primary { m.master } else { m.slave };
    for (title, primary) in [("primary", true), ("secondary", false)] {
        if !primary {
            s.push('\n');
        }
        let _ = write!(s, "\n {title}:");
        line(s, "PACKET_IN", pick(&a.packet_in_mask, primary), PACKET_IN);
        line(s, "PORT_STATUS", pick(&a.port_status_mask, primary), PORT_STATUS);
        line(s, "FLOW_REMOVED", pick(&a.flow_removed_mask, primary), FLOW_REMOVED);
        for label in ["ROLE_STATUS", "TABLE_STATUS", "REQUESTFORWARD"] {
            line(s, label, 0, &[]);
        }
    }
}

fn queue_prop(p: &crate::codec::openflow::QueueProp) -> String {
    use crate::codec::openflow::QueueProp;
    match p {
        QueueProp::MinRate(r) => format!("min_rate:{}", rate_text(*r)),
        QueueProp::MaxRate(r) => format!("max_rate:{}", rate_text(*r)),
        QueueProp::Experimenter { experimenter, data } => {
            format!("experimenter:{experimenter:#x}({} bytes)", data.len())
        }
        QueueProp::Unknown { prop_type, data } => {
            format!("property:{prop_type}({} bytes)", data.len())
        }
        _ => "?".into(),
    }
}

fn rate_text(r: u16) -> String {
    if r > 1000 {
        "disabled".into()
    } else {
        format!("{}.{}%", r / 10, r % 10)
    }
}

fn mp_request(s: &mut String, b: &MultipartRequestBody) {
    match b {
        MultipartRequestBody::Flow(r) | MultipartRequestBody::Aggregate(r) => {
            if r.table_id.0 != 0xff {
                let _ = write!(s, " table={}", r.table_id.0);
            }
            if r.out_port != PortNo::ANY {
                let _ = write!(s, " out_port={}", r.out_port);
            }
            if r.out_group.0 != u32::MAX {
                let _ = write!(s, " out_group={}", r.out_group.0);
            }
            if r.cookie_mask != 0 {
                let _ = write!(s, " cookie={:#x}/{:#x}", r.cookie.0, r.cookie_mask);
            }
            let m = r.matches.to_string();
            if !m.is_empty() {
                let _ = write!(s, " {m}");
            }
        }
        MultipartRequestBody::PortStats(p) => {
            let _ = write!(s, " port_no={p}");
        }
        MultipartRequestBody::PortDesc => s.push_str(" port=ANY"),
        MultipartRequestBody::Queue(q) => {
            let queue =
                if q.queue_id.0 == u32::MAX { "ALL".into() } else { q.queue_id.0.to_string() };
            let _ = write!(s, " port={} queue={queue}", q.port_no);
        }
        MultipartRequestBody::Group(g) => {
            let _ = write!(s, " group_id={}", group_id(g.0));
        }
        MultipartRequestBody::Meter(m) | MultipartRequestBody::MeterConfig(m) => {
            let id = if m.0 == u32::MAX { "all".into() } else { m.0.to_string() };
            let _ = write!(s, " meter={id}");
        }
        MultipartRequestBody::TableFeatures(t) if !t.is_empty() => {
            let _ = write!(s, " {} tables", t.len());
        }
        MultipartRequestBody::Experimenter(e) => {
            let _ = write!(s, " experimenter={:#010x} exp_type={}", e.experimenter, e.exp_type);
        }
        MultipartRequestBody::Unknown { body, .. } => {
            let _ = write!(s, " {} bytes", body.len());
        }
        _ => {}
    }
}

fn group_id(id: u32) -> String {
    match id {
        0xffff_fffc => "ALL".into(),
        0xffff_ffff => "ANY".into(),
        n => n.to_string(),
    }
}

fn duration(sec: u32, nsec: u32) -> String {
    format!("{sec}.{:03}s", nsec / 1_000_000)
}

fn mp_reply(s: &mut String, b: &MultipartReplyBody) {
    match b {
        MultipartReplyBody::Desc(d) => {
            let _ = write!(
                s,
                "\nManufacturer: {}\nHardware: {}\nSoftware: {}\nSerial Num: {}\nDP Description: {}",
                d.mfr_desc, d.hw_desc, d.sw_desc, d.serial_num, d.dp_desc
            );
        }
        MultipartReplyBody::Flow(flows) => {
            for f in flows {
                let _ = write!(s, "\n {f}");
            }
        }
        MultipartReplyBody::Aggregate(a) => {
            let _ = write!(
                s,
                " packet_count={} byte_count={} flow_count={}",
                a.packet_count, a.byte_count, a.flow_count
            );
        }
        MultipartReplyBody::Table(tables) => table_stats(s, tables),
        MultipartReplyBody::PortStats(ports) => {
            let _ = write!(s, " {} ports", ports.len());
            for p in ports {
                let _ = write!(
                    s,
                    "\n  port {}: rx pkts={}, bytes={}, drop={}, errs={}, frame={}, over={}, crc={}",
                    p.port_no,
                    p.rx_packets,
                    p.rx_bytes,
                    p.rx_dropped,
                    p.rx_errors,
                    p.rx_frame_err,
                    p.rx_over_err,
                    p.rx_crc_err
                );
                let _ = write!(
                    s,
                    "\n           tx pkts={}, bytes={}, drop={}, errs={}, coll={}",
                    p.tx_packets, p.tx_bytes, p.tx_dropped, p.tx_errors, p.collisions
                );
                let _ = write!(
                    s,
                    "\n           duration={}",
                    duration(p.duration_sec, p.duration_nsec)
                );
            }
        }
        MultipartReplyBody::Queue(queues) => {
            let _ = write!(s, " {} queues", queues.len());
            for q in queues {
                let _ = write!(
                    s,
                    "\n  port {} queue {}: bytes={}, pkts={}, errors={}, duration={}",
                    q.port_no,
                    q.queue_id.0,
                    q.tx_bytes,
                    q.tx_packets,
                    q.tx_errors,
                    duration(q.duration_sec, q.duration_nsec)
                );
            }
        }
        MultipartReplyBody::Group(groups) => {
            for g in groups {
                let _ = write!(
                    s,
                    "\n group_id={},duration={},ref_count={},packet_count={},byte_count={}",
                    g.group_id.0,
                    duration(g.duration_sec, g.duration_nsec),
                    g.ref_count,
                    g.packet_count,
                    g.byte_count
                );
                for (i, b) in g.bucket_stats.iter().enumerate() {
                    let _ = write!(
                        s,
                        ",bucket{i}:packet_count={},byte_count={}",
                        b.packet_count, b.byte_count
                    );
                }
            }
        }
        MultipartReplyBody::GroupDesc(groups) => {
            for GroupDesc { group_type, group_id, buckets } in groups {
                s.push_str("\n ");
                group(s, group_id.0, *group_type, buckets);
            }
        }
        MultipartReplyBody::GroupFeatures(f) => {
            let _ = write!(
                s,
                "\n Group table:\n    Types:  {:#x}\n    Capabilities:  {:#x}",
                f.types, f.capabilities
            );
            for (i, name) in ["all", "select", "indirect", "fast failover"].iter().enumerate() {
                if f.types & (1 << i) != 0 {
                    let _ = write!(
                        s,
                        "\n    {name} group:\n       max_groups={:#x}\n       actions: {}",
                        f.max_groups[i],
                        action_bits(f.actions[i])
                    );
                }
            }
        }
        MultipartReplyBody::Meter(meters) => {
            for m in meters {
                let _ = write!(
                    s,
                    "\nmeter:{} flow_count:{} packet_in_count:{} byte_in_count:{} duration:{} bands:",
                    m.meter_id.0,
                    m.flow_count,
                    m.packet_in_count,
                    m.byte_in_count,
                    format_args!("{}.{:03}s", m.duration_sec, m.duration_nsec / 1_000_000)
                );
                for (i, b) in m.band_stats.iter().enumerate() {
                    let _ = write!(
                        s,
                        "\n{i}: packet_count:{} byte_count:{}",
                        b.packet_band_count, b.byte_band_count
                    );
                }
            }
        }
        MultipartReplyBody::MeterConfig(configs) => {
            for c in configs {
                s.push('\n');
                meter(s, c.meter_id.0, c.flags, &c.bands);
            }
        }
        MultipartReplyBody::MeterFeatures(f) => {
            let _ = write!(
                s,
                "\nmax_meter:{} max_bands:{} max_color:{}",
                f.max_meter, f.max_bands, f.max_color
            );
            let bands = bits(f.band_types >> 1, &[(1, "drop"), (2, "dscp_remark")]);
            let _ = write!(s, "\nband_types: {bands}");
            let _ = write!(s, "\ncapabilities: {}", bits(f.capabilities, METER_FLAGS));
        }
        MultipartReplyBody::TableFeatures(tables) => table_features(s, tables),
        MultipartReplyBody::PortDesc(ports) => {
            for p in ports {
                s.push('\n');
                port(s, p);
            }
        }
        MultipartReplyBody::Experimenter(e) => {
            let _ = write!(s, " experimenter={:#010x} exp_type={}", e.experimenter, e.exp_type);
            if !e.data.is_empty() {
                s.push('\n');
                hex_dump(s, &e.data);
            }
        }
        MultipartReplyBody::Unknown { body, .. } => {
            let _ = write!(s, " {} bytes", body.len());
        }
        _ => {}
    }
}

/// Prints `items` one after the other, a blank line between them, except that a run repeating
/// the item before it (by `same`) becomes one `tables A...B: ditto` line, as Open vSwitch does.
fn with_ditto<T>(
    s: &mut String,
    items: &[T],
    id: impl Fn(&T) -> u8,
    same: impl Fn(&T, &T) -> bool,
    mut print: impl FnMut(&mut String, &T),
) {
    let mut i = 0;
    while i < items.len() {
        if i > 0 {
            s.push('\n');
        }
        if i > 0 && same(&items[i], &items[i - 1]) {
            let mut end = i;
            while end + 1 < items.len() && same(&items[end + 1], &items[i]) {
                end += 1;
            }
            if end > i {
                let _ = write!(s, "\n  tables {}...{}: ditto", id(&items[i]), id(&items[end]));
            } else {
                let _ = write!(s, "\n  table {}: ditto", id(&items[i]));
            }
            i = end + 1;
            continue;
        }
        print(s, &items[i]);
        i += 1;
    }
}

fn table_stats(s: &mut String, tables: &[TableStats]) {
    with_ditto(
        s,
        tables,
        |t| t.table_id.0,
        |a, b| {
            (a.active_count, a.lookup_count, a.matched_count)
                == (b.active_count, b.lookup_count, b.matched_count)
        },
        |s, t| {
            let _ = write!(
                s,
                "\n  table {}:\n    active={}, lookup={}, matched={}",
                t.table_id.0, t.active_count, t.lookup_count, t.matched_count
            );
        },
    );
}

/// Whether two tables have the same features but for their ids. Next-table lists count as
/// the same when each holds every table after its own up to the same last one (Open vSwitch
/// prints `tables 1...11: ditto` for such tables).
fn same_features(a: &TableFeatures, b: &TableFeatures) -> bool {
    let norm = |t: &TableFeatures| -> Vec<TableFeatureProp> {
        t.properties
            .iter()
            .map(|p| match p {
                TableFeatureProp::NextTables(v) | TableFeatureProp::NextTablesMiss(v)
                    if v.first().is_some_and(|f| f.0 == t.table_id.0.wrapping_add(1))
                        && v.windows(2).all(|w| w[1].0 == w[0].0.wrapping_add(1)) =>
                {
                    let last = v.last().copied().into_iter().collect();
                    match p {
                        TableFeatureProp::NextTables(_) => TableFeatureProp::NextTables(last),
                        _ => TableFeatureProp::NextTablesMiss(last),
                    }
                }
                other => other.clone(),
            })
            .collect()
    };
    (&a.name, a.metadata_match, a.metadata_write, a.config, a.max_entries)
        == (&b.name, b.metadata_match, b.metadata_write, b.config, b.max_entries)
        && norm(a) == norm(b)
}

fn table_features(s: &mut String, tables: &[TableFeatures]) {
    with_ditto(
        s,
        tables,
        |t| t.table_id.0,
        same_features,
        |s, t| {
            let _ = write!(s, "\n  table {}", t.table_id.0);
            if !t.name.is_empty() {
                let _ = write!(s, " (\"{}\")", t.name);
            }
            let _ = write!(
                s,
                ":\n    metadata: match={:#x} write={:#x}\n    max_entries={}",
                t.metadata_match, t.metadata_write, t.max_entries
            );
            for p in &t.properties {
                let _ = write!(s, "\n    {}", table_prop(p));
            }
        },
    );
}

fn table_prop(p: &TableFeatureProp) -> String {
    let miss = |m: bool| if m { " (table miss)" } else { "" };
    match p {
        TableFeatureProp::Instructions(v) | TableFeatureProp::InstructionsMiss(v) => format!(
            "instructions{}: {} ids",
            miss(matches!(p, TableFeatureProp::InstructionsMiss(_))),
            v.len()
        ),
        TableFeatureProp::NextTables(v) | TableFeatureProp::NextTablesMiss(v) => {
            let ids: Vec<String> = v.iter().map(|t| t.0.to_string()).collect();
            let m = miss(matches!(p, TableFeatureProp::NextTablesMiss(_)));
            if ids.len() > 2 && v.windows(2).all(|w| w[1].0 == w[0].0.wrapping_add(1)) {
                format!("next tables{m}: {}-{}", ids[0], ids[ids.len() - 1])
            } else {
                format!("next tables{m}: {}", ids.join(","))
            }
        }
        TableFeatureProp::WriteActions(v)
        | TableFeatureProp::WriteActionsMiss(v)
        | TableFeatureProp::ApplyActions(v)
        | TableFeatureProp::ApplyActionsMiss(v) => {
            let (name, m) = match p {
                TableFeatureProp::WriteActions(_) => ("write actions", false),
                TableFeatureProp::WriteActionsMiss(_) => ("write actions", true),
                TableFeatureProp::ApplyActions(_) => ("apply actions", false),
                _ => ("apply actions", true),
            };
            format!("{name}{}: {} ids", miss(m), v.len())
        }
        TableFeatureProp::Match(v) => format!("match: {} fields", v.len()),
        TableFeatureProp::Wildcards(v) => format!("wildcards: {} fields", v.len()),
        TableFeatureProp::WriteSetfield(v) | TableFeatureProp::WriteSetfieldMiss(v) => format!(
            "write set_field{}: {} fields",
            miss(matches!(p, TableFeatureProp::WriteSetfieldMiss(_))),
            v.len()
        ),
        TableFeatureProp::ApplySetfield(v) | TableFeatureProp::ApplySetfieldMiss(v) => format!(
            "apply set_field{}: {} fields",
            miss(matches!(p, TableFeatureProp::ApplySetfieldMiss(_))),
            v.len()
        ),
        TableFeatureProp::Experimenter { miss: m, experimenter, exp_type, data } => format!(
            "experimenter{}: {experimenter:#x} type {exp_type} ({} bytes)",
            miss(*m),
            data.len()
        ),
        TableFeatureProp::Unknown { prop_type, data } => {
            format!("property {prop_type} ({} bytes)", data.len())
        }
        _ => "?".into(),
    }
}

/// OpenFlow 1.3 action type bits as `ovs-ofctl` names them.
fn action_bits(v: u32) -> String {
    const NAMES: &[(u32, &str)] = &[
        (0, "output"),
        (22, "group"),
        (25, "set_field"),
        (18, "strip_vlan"),
        (17, "push_vlan"),
        (23, "mod_nw_ttl"),
        (24, "dec_ttl"),
        (15, "set_mpls_ttl"),
        (16, "dec_mpls_ttl"),
        (19, "push_mpls"),
        (20, "pop_mpls"),
        (21, "set_queue"),
        (11, "copy_ttl_out"),
        (12, "copy_ttl_in"),
        (26, "push_pbb"),
        (27, "pop_pbb"),
    ];
    let names: Vec<&str> =
        NAMES.iter().filter(|(b, _)| v & (1 << b) != 0).map(|(_, n)| *n).collect();
    names.join(" ")
}

/// Open vSwitch's `ovs_hex_dump` with offsets: 16 bytes a line, a `-` after the eighth.
fn hex_dump(s: &mut String, data: &[u8]) {
    for (i, chunk) in data.chunks(16).enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = write!(s, "{:08x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(s, "{b:02x}");
                }
                None => s.push_str("  "),
            }
            s.push(if j == 7 && chunk.len() >= 8 { '-' } else { ' ' });
        }
        s.push('|');
        for j in 0..16 {
            s.push(match chunk.get(j) {
                Some(&b) if b.is_ascii_graphic() || b == b' ' => char::from(b),
                Some(_) => '.',
                None => ' ',
            });
        }
        s.push('|');
    }
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(at)?, *d.get(at + 1)?]))
}

fn mac(d: &[u8], at: usize) -> Option<String> {
    let b = d.get(at..at + 6)?;
    Some(b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":"))
}

fn ipv4(d: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// The packet's headers on a line of their own, in the flow syntax `ofp-print` uses for
/// packet-ins and packet-outs (`tcp,vlan_tci=0x0000,dl_src=...,tp_dst=443`).
fn packet_line(s: &mut String, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    s.push('\n');
    s.push_str(
        &packet_summary(data).unwrap_or_else(|| format!("({} bytes, truncated)", data.len())),
    );
}

fn packet_summary(d: &[u8]) -> Option<String> {
    let dst = mac(d, 0)?;
    let src = mac(d, 6)?;
    let mut eth = be16(d, 12)?;
    let mut l3 = 14;
    let mut tci = 0;
    if eth == 0x8100 || eth == 0x88a8 {
        tci = be16(d, 14)? | 0x1000;
        eth = be16(d, 16)?;
        l3 = 18;
    }
    let link = format!("vlan_tci={tci:#06x},dl_src={src},dl_dst={dst}");
    match eth {
        0x0800 => {
            let ihl = usize::from(d.get(l3)? & 0x0f) * 4;
            let tos = *d.get(l3 + 1)?;
            let frag = be16(d, l3 + 6)?;
            let ttl = *d.get(l3 + 8)?;
            let proto = *d.get(l3 + 9)?;
            let (nsrc, ndst) = (ipv4(d, l3 + 12)?, ipv4(d, l3 + 16)?);
            let nw_frag = if frag & 0x3fff == 0 {
                "no"
            } else if frag & 0x1fff == 0 {
                "first"
            } else {
                "later"
            };
            let ip = format!(
                "nw_src={nsrc},nw_dst={ndst},nw_tos={},nw_ecn={},nw_ttl={ttl},nw_frag={nw_frag}",
                tos & 0xfc,
                tos & 3
            );
            let l4 = l3 + ihl.max(20);
            let (name, tail) = l4_summary(d, proto, l4, false);
            let tail = if nw_frag == "later" { String::new() } else { tail };
            Some(format!("{name},{link},{ip}{tail}"))
        }
        0x86dd => {
            let b: [u8; 16] = d.get(l3 + 8..l3 + 24)?.try_into().ok()?;
            let c: [u8; 16] = d.get(l3 + 24..l3 + 40)?.try_into().ok()?;
            let next = *d.get(l3 + 6)?;
            let hop = *d.get(l3 + 7)?;
            let ip = format!(
                "ipv6_src={},ipv6_dst={},nw_ttl={hop}",
                Ipv6Addr::from(b),
                Ipv6Addr::from(c)
            );
            let (name, tail) = l4_summary(d, next, l3 + 40, true);
            Some(format!("{name},{link},{ip}{tail}"))
        }
        0x0806 => {
            let op = be16(d, l3 + 6)?;
            Some(format!(
                "arp,{link},arp_spa={},arp_tpa={},arp_op={op},arp_sha={},arp_tha={}",
                ipv4(d, l3 + 14)?,
                ipv4(d, l3 + 24)?,
                mac(d, l3 + 8)?,
                mac(d, l3 + 18)?
            ))
        }
        t => Some(format!("{link},dl_type={t:#06x}")),
    }
}

/// Protocol name and transport fields for IP protocol `proto` at `at`.
fn l4_summary(d: &[u8], proto: u8, at: usize, v6: bool) -> (&'static str, String) {
    let ports = |name: &'static str| match (be16(d, at), be16(d, at + 2)) {
        (Some(a), Some(b)) => (name, format!(",tp_src={a},tp_dst={b}")),
        _ => (name, String::new()),
    };
    match (proto, v6) {
        (6, _) => {
            let (name, mut t) = ports(if v6 { "tcp6" } else { "tcp" });
            if let Some(f) = be16(d, at + 12) {
                let _ = write!(t, ",tcp_flags={}", tcp_flags(f & 0x0fff));
            }
            (name, t)
        }
        (17, _) => ports(if v6 { "udp6" } else { "udp" }),
        (132, _) => ports(if v6 { "sctp6" } else { "sctp" }),
        (1, false) | (58, true) => match (d.get(at), d.get(at + 1)) {
            (Some(t), Some(c)) => {
                (if v6 { "icmp6" } else { "icmp" }, format!(",icmp_type={t},icmp_code={c}"))
            }
            _ => (if v6 { "icmp6" } else { "icmp" }, String::new()),
        },
        (p, false) => ("ip", format!(",nw_proto={p}")),
        (p, true) => ("ipv6", format!(",nw_proto={p}")),
    }
}

fn tcp_flags(f: u16) -> String {
    const NAMES: &[&str] = &["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"];
    let set: Vec<&str> =
        NAMES.iter().enumerate().filter(|(i, _)| f & (1 << i) != 0).map(|(_, n)| *n).collect();
    if set.is_empty() {
        "0".into()
    } else {
        set.join("|")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::openflow::{Hello, Message, Xid};

    #[test]
    fn hex_ignores_space_and_prefixes() {
        assert_eq!(
            parse_hex("0x04 00\n00 08 0xdeadbeef").unwrap(),
            vec![4, 0, 0, 8, 0xde, 0xad, 0xbe, 0xef]
        );
    }

    #[test]
    fn odd_hex_names_the_incomplete_byte() {
        assert_eq!(parse_hex("0400 0"), Err(HexError::OddDigits { digits: 5, offset: 2 }));
        assert_eq!(parse_hex("04zz"), Err(HexError::BadChar { ch: 'z', pos: 2 }));
    }

    #[test]
    fn frames_report_the_absolute_offset() {
        let mut b = OfpMessage::new(Xid(1), Message::BarrierRequest).to_vec();
        b.extend_from_slice(&[4, 0x14, 0, 0x10, 0, 0, 0, 2]);
        let v: Vec<_> = Frames::new(&b).collect();
        assert_eq!(v.len(), 2);
        assert!(v[0].is_ok());
        let e = v[1].as_ref().unwrap_err();
        assert_eq!(e.offset(), 16, "{e}");
    }

    #[test]
    fn hello_lists_versions() {
        let m = OfpMessage::new(Xid(1), Message::Hello(Hello::with_versions(&[1, 4])));
        assert_eq!(format(&m), "OFPT_HELLO (OF1.3) (xid=0x1):\n version bitmap: 0x01, 0x04");
    }

    #[test]
    fn hex_dump_matches_ovs() {
        let mut s = String::new();
        hex_dump(&mut s, &[4, 0x0e, 0, 0x50, 0, 0, 0, 1]);
        assert_eq!(
            s,
            "00000000  04 0e 00 50 00 00 00 01-                        |...P....        |"
        );
    }
}
