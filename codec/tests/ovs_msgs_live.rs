//! What Open vSwitch sends, we decode: a real ovs-vswitchd 3.1 (userspace datapath, in a network
//! namespace of its own) is asked for every multipart body, queue config and async config, is
//! given a group, a meter and a bundle, and is made to answer with errors. Every message it
//! sends must parse, have the expected type, and re-emit to exactly the bytes received.
//!
//! Needs root, `ip netns`, and the Open vSwitch binaries (`ovsdb-tool`, `ovsdb-server`,
//! `ovs-vswitchd`, `ovs-vsctl`); without them the test fails. With `PERISCOPE_CAPTURE_DIR` set,
//! the received messages are also written there as hex, one file per request.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use periscope_codec::openflow::bundle::BUNDLE_ATOMIC;
use periscope_codec::openflow::error::{bundle_failed, group_mod_failed};
use periscope_codec::openflow::meter::{METER_FLAG_KBPS, METER_FLAG_STATS};
use periscope_codec::openflow::multipart::MULTIPART_MORE;
use periscope_codec::openflow::*;

/// A private ovsdb-server + ovs-vswitchd in their own network namespace, removed on drop.
struct Switch {
    ns: String,
    dir: PathBuf,
    bridge: String,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Switch {
    fn start() -> Switch {
        let nanos =
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let tag = format!("{}{:x}", std::process::id(), nanos % 0x1000);
        let ns = format!("pscodec-{tag}");
        let dir = std::env::temp_dir().join(format!("pscodec-{tag}"));
        let bridge = "pscbr0".to_string();
        std::fs::create_dir_all(&dir).expect("temp dir");
        let sw = Switch { ns, dir, bridge };
        run(Command::new("ip").args(["netns", "add", &sw.ns]));
        let d = sw.dir.display().to_string();
        run(Command::new("ovsdb-tool").args([
            "create",
            &format!("{d}/conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]));
        run(sw.in_ns("ovsdb-server").args([
            &format!("{d}/conf.db"),
            &format!("--remote=punix:{d}/db.sock"),
            &format!("--unixctl={d}/ovsdb.ctl"),
            &format!("--pidfile={d}/ovsdb.pid"),
            &format!("--log-file={d}/ovsdb.log"),
            "--detach",
        ]));
        run(sw.vsctl().args(["--no-wait", "init"]));
        run(sw.in_ns("ovs-vswitchd").args([
            &format!("unix:{d}/db.sock"),
            &format!("--unixctl={d}/vswitchd.ctl"),
            &format!("--pidfile={d}/vswitchd.pid"),
            &format!("--log-file={d}/vswitchd.log"),
            "--detach",
        ]));
        run(sw.vsctl().args([
            "add-br",
            &sw.bridge,
            "--",
            "set",
            "bridge",
            &sw.bridge,
            "datapath_type=netdev",
            "protocols=OpenFlow13",
        ]));
        sw
    }

    fn in_ns(&self, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, prog]).env("OVS_RUNDIR", &self.dir);
        c
    }

    fn vsctl(&self) -> Command {
        let mut c = Command::new("ovs-vsctl");
        c.arg(format!("--db=unix:{}/db.sock", self.dir.display())).arg("--timeout=20");
        c
    }

    /// Connects to the bridge's management socket, the way `ovs-ofctl` does.
    fn connect(&self) -> UnixStream {
        let path = self.dir.join(format!("{}.mgmt", self.bridge));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match UnixStream::connect(&path) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
                    return s;
                }
                Err(e) if Instant::now() > deadline => panic!("no {}: {e}", path.display()),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        for pidfile in ["vswitchd.pid", "ovsdb.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(pidfile)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An OpenFlow 1.3 connection that checks every message it receives.
struct Conn {
    s: UnixStream,
    buf: Vec<u8>,
    xid: u32,
    capture: Option<PathBuf>,
}

impl Conn {
    fn open(sw: &Switch) -> Conn {
        let capture = std::env::var_os("PERISCOPE_CAPTURE_DIR").map(PathBuf::from);
        let mut c = Conn { s: sw.connect(), buf: Vec::new(), xid: 1, capture };
        c.send(&OfpMessage::new(Xid(0), Message::Hello(Hello::with_versions(&[4]))));
        let (hello, _) = c.recv();
        assert!(matches!(hello.msg, Message::Hello(_)), "expected a hello, got {hello:?}");
        c
    }

    fn send(&mut self, m: &OfpMessage) {
        self.s.write_all(&m.to_vec()).expect("send");
    }

    /// Receives one message; asserts that it parses and re-emits byte for byte.
    fn recv(&mut self) -> (OfpMessage, Vec<u8>) {
        loop {
            if let Some(len) = frame_len(&self.buf, usize::from(u16::MAX)).expect("framing") {
                if self.buf.len() >= len {
                    let raw: Vec<u8> = self.buf.drain(..len).collect();
                    let m = OfpMessage::parse(&raw)
                        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", hex(&raw)));
                    assert_eq!(m.to_vec(), raw, "re-emit differs for {m:?}");
                    return (m, raw);
                }
            }
            let mut chunk = [0u8; 65536];
            let n = self.s.read(&mut chunk).expect("read from ovs-vswitchd");
            assert!(n > 0, "ovs-vswitchd closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `msg` and a barrier; returns every message answered before the barrier reply.
    fn ask(&mut self, name: &str, msg: Message) -> Vec<OfpMessage> {
        let xid = self.xid;
        self.xid += 2;
        self.send(&OfpMessage::new(Xid(xid), msg));
        self.send(&OfpMessage::new(Xid(xid + 1), Message::BarrierRequest));
        let mut out = Vec::new();
        let mut raws = Vec::new();
        loop {
            let (m, raw) = self.recv();
            if m.xid == Xid(xid + 1) && m.msg == Message::BarrierReply {
                break;
            }
            assert_eq!(m.xid, Xid(xid), "{name}: unexpected {m:?}");
            raws.push(hex(&raw));
            out.push(m);
        }
        if let Some(dir) = &self.capture {
            std::fs::write(dir.join(format!("{name}.hex")), raws.join("\n") + "\n")
                .expect("capture");
        }
        out
    }

    /// Asks a multipart request and returns the reply bodies, checking the MORE flags.
    fn multipart(&mut self, name: &str, body: MultipartRequestBody) -> Vec<MultipartReplyBody> {
        let mp_type = body.mp_type();
        let replies =
            self.ask(name, Message::MultipartRequest(MultipartRequest { flags: 0, body }));
        assert!(!replies.is_empty(), "{name}: no reply");
        let n = replies.len();
        replies
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let Message::MultipartReply(r) = m.msg else { panic!("{name}: got {:?}", m.msg) };
                assert_eq!(r.body.mp_type(), mp_type, "{name}");
                assert_eq!(
                    r.flags & MULTIPART_MORE != 0,
                    i + 1 < n,
                    "{name}: MORE flag of part {i}"
                );
                r.body
            })
            .collect()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn select_group(id: u32) -> GroupMod {
    GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::Select,
        group_id: GroupId(id),
        buckets: vec![
            Bucket { weight: 70, ..Bucket::with_actions(vec![Action::output(PortNo::LOCAL)]) },
            Bucket { weight: 30, ..Bucket::with_actions(vec![Action::output(PortNo::LOCAL)]) },
        ],
    }
}

fn only_error(name: &str, replies: Vec<OfpMessage>) -> ErrorMsg {
    match &replies[..] {
        [OfpMessage { msg: Message::Error(e), .. }] => e.clone(),
        other => panic!("{name}: expected one error, got {other:?}"),
    }
}

#[test]
fn ovs_vswitchd_messages_decode_and_reemit() {
    let sw = Switch::start();
    let mut c = Conn::open(&sw);

    // A group and a meter, so that their descriptions have content.
    assert!(c.ask("group_mod", Message::GroupMod(select_group(1))).is_empty());
    let meter = MeterMod {
        command: MeterModCommand::Add,
        flags: METER_FLAG_KBPS | METER_FLAG_STATS,
        meter_id: MeterId(1),
        bands: vec![MeterBand::Drop { rate: 1000, burst_size: 0 }],
    };
    assert!(c.ask("meter_mod", Message::MeterMod(meter.clone())).is_empty());
    assert!(c
        .ask("table_mod", Message::TableMod(TableMod { table_id: TableId(0), config: 0 }))
        .is_empty());

    // Errors name the failed request.
    let e = only_error("group_exists", c.ask("group_exists", Message::GroupMod(select_group(1))));
    assert_eq!((e.err_type, e.code), (ErrorType::GroupModFailed, group_mod_failed::GROUP_EXISTS));
    assert_eq!(e.to_string(), "OFPGMFC_GROUP_EXISTS");

    // A bundle: open, add a group, commit.
    let ctl = |id, t| {
        Message::BundleControl(BundleControl {
            bundle_id: BundleId(id),
            ctrl_type: t,
            flags: BUNDLE_ATOMIC,
            properties: vec![],
        })
    };
    let replies = c.ask("bundle_open", ctl(5, BundleCtrlType::OpenRequest));
    assert!(
        matches!(&replies[..], [OfpMessage { msg: Message::BundleControl(b), .. }]
            if b.ctrl_type == BundleCtrlType::OpenReply && b.bundle_id == BundleId(5)),
        "{replies:?}"
    );
    let xid = c.xid;
    c.xid += 2;
    let add = BundleAdd {
        bundle_id: BundleId(5),
        flags: BUNDLE_ATOMIC,
        message: Box::new(OfpMessage::new(Xid(xid), Message::GroupMod(select_group(2)))),
        properties: vec![],
    };
    c.send(&OfpMessage::new(Xid(xid), Message::BundleAdd(add)));
    c.send(&OfpMessage::new(Xid(xid + 1), Message::BarrierRequest));
    let (m, _) = c.recv();
    assert_eq!((m.xid, m.msg), (Xid(xid + 1), Message::BarrierReply), "bundle add was refused");
    let replies = c.ask("bundle_commit", ctl(5, BundleCtrlType::CommitRequest));
    assert!(
        matches!(&replies[..], [OfpMessage { msg: Message::BundleControl(b), .. }]
            if b.ctrl_type == BundleCtrlType::CommitReply),
        "{replies:?}"
    );
    let e =
        only_error("bundle_bad_id", c.ask("bundle_bad_id", ctl(77, BundleCtrlType::CommitRequest)));
    assert_eq!(e.experimenter, Some(ONF_EXPERIMENTER_ID));
    assert_eq!(e.code, bundle_failed::BAD_ID);
    assert_eq!(e.to_string(), "OFPBFC_BAD_ID");

    // Async config: what we set is what we read.
    let mut a = match &c.ask("get_async", Message::GetAsyncRequest)[..] {
        [OfpMessage { msg: Message::GetAsyncReply(a), .. }] => *a,
        other => panic!("get_async: {other:?}"),
    };
    a.flow_removed_mask.slave = 0b11;
    assert!(c.ask("set_async", Message::SetAsync(a)).is_empty());
    match &c.ask("get_async_after_set", Message::GetAsyncRequest)[..] {
        [OfpMessage { msg: Message::GetAsyncReply(b), .. }] => assert_eq!(*b, a),
        other => panic!("get_async: {other:?}"),
    }

    match &c.ask(
        "queue_get_config",
        Message::QueueGetConfigRequest(QueueGetConfigRequest { port: PortNo::ANY }),
    )[..]
    {
        [OfpMessage { msg: Message::QueueGetConfigReply(q), .. }] => {
            assert_eq!(q.port, PortNo::ANY)
        }
        other => panic!("queue_get_config: {other:?}"),
    }

    // Every multipart type.
    use MultipartReplyBody as R;
    use MultipartRequestBody as Q;
    let groups: Vec<GroupDesc> = c
        .multipart("group_desc", Q::GroupDesc)
        .into_iter()
        .flat_map(|b| match b {
            R::GroupDesc(g) => g,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut ids: Vec<u32> = groups.iter().map(|g| g.group_id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2], "the group mod and the bundled one");
    assert_eq!(groups[0].buckets.len(), 2);
    assert_eq!(groups[0].buckets[0].actions, vec![Action::output(PortNo::LOCAL)]);

    let configs = c.multipart("meter_config", Q::MeterConfig(MeterId::ALL));
    // OVS reports the burst size it uses (the rate) even without the burst flag.
    assert!(
        matches!(&configs[..], [R::MeterConfig(m)] if m.len() == 1
            && m[0].meter_id == MeterId(1)
            && matches!(m[0].bands[..], [MeterBand::Drop { rate: 1000, .. }])),
        "{configs:?}"
    );
    let features = c.multipart("table_features", Q::TableFeatures(vec![]));
    let tables: usize = features
        .iter()
        .map(|b| match b {
            R::TableFeatures(t) => t.len(),
            other => panic!("{other:?}"),
        })
        .sum();
    assert!(tables >= 254, "OVS has 254 tables, got features of {tables}");

    for (name, body) in [
        ("desc", Q::Desc),
        ("flow", Q::Flow(FlowStatsRequest::default().into())),
        ("aggregate", Q::Aggregate(FlowStatsRequest::default().into())),
        ("table", Q::Table),
        ("port_stats", Q::PortStats(PortNo::ANY)),
        ("queue", Q::Queue(QueueStatsRequest { port_no: PortNo::ANY, queue_id: QueueId::ALL })),
        ("group", Q::Group(GroupId::ALL)),
        ("group_features", Q::GroupFeatures),
        ("meter", Q::Meter(MeterId::ALL)),
        ("meter_features", Q::MeterFeatures),
        ("port_desc", Q::PortDesc),
    ] {
        let bodies = c.multipart(name, body);
        assert!(
            bodies.iter().all(|b| !matches!(b, R::Unknown { .. })),
            "{name}: not decoded: {bodies:?}"
        );
    }

    // A request OVS does not know gets an error naming the multipart type.
    let e = only_error(
        "bad_multipart",
        c.ask(
            "bad_multipart",
            Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: Q::Unknown { mp_type: MultipartType::from(0x77), body: vec![] },
            }),
        ),
    );
    assert_eq!(e.err_type, ErrorType::BadRequest);
    assert_eq!(e.to_string(), "OFPBRC_BAD_STAT");
}
