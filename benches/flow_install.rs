//! Proactive flow install into a real ovs-vswitchd (userspace datapath, one bridge of a lab
//! hypervisor): N flows (default 100 000) through periscope's own OpenFlow session and driver,
//! as flow mods with a barrier after every chunk and as one ONF bundle (adds confirmed by a
//! barrier per chunk, then the commit), against `ovs-ofctl add-flows` and
//! `ovs-ofctl --bundle add-flows` of the same flows in the same run. Each method starts from
//! an empty table and ends when the switch has confirmed the last flow (barrier reply, commit
//! reply, ovs-ofctl's exit); then `ovs-ofctl dump-aggregate` must count all N flows.
//!
//! Needs root. `cargo bench --bench flow_install`; `PERISCOPE_BENCH_FLOWS` sets N,
//! `PERISCOPE_BENCH_JSON` a file for the results.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use periscope::codec::openflow::bundle::{BundleAdd, BundleControl, BundleCtrlType, BundleId};
use periscope::codec::openflow::bundle::{BUNDLE_ATOMIC, BUNDLE_ORDERED};
use periscope::codec::openflow::{
    FlowMod, Match, Message, OfpMessage, OxmField, TableId, Xid, OFP_VERSION_1_3,
};
use periscope::lab::{ControllerTarget, Hypervisor, HypervisorOptions, Lab};
use periscope::openflow::driver::{ConnId, Request, SwitchCommand, SwitchEvent};
use periscope::openflow::listener::{Bound, ListenAddr, Shared};
use periscope::openflow::session::{SessionConfig, SessionEvent};
use serde_json::json;
use tokio::sync::mpsc;

/// The table the flows go to (nothing else uses it).
const TABLE: u8 = 10;
/// Flow mods (or bundle adds) per barrier.
const CHUNK: usize = 1000;
/// Chunks whose barrier may be outstanding at once.
const WINDOW: usize = 16;

/// Flow `i`: IPv4 to 198.18.x.y (the benchmarking range), dropped.
fn dst(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i as u32)
}

fn flow_mod(i: usize) -> FlowMod {
    FlowMod {
        table_id: TableId(TABLE),
        priority: 100,
        matches: Match::new([OxmField::EthType(0x0800), OxmField::Ipv4Dst(dst(i), None)]),
        ..FlowMod::default()
    }
}

fn ofctl_line(i: usize) -> String {
    format!("table={TABLE},priority=100,ip,nw_dst={},actions=drop", dst(i))
}

struct Switch {
    commands: mpsc::Sender<SwitchCommand>,
    events: mpsc::Receiver<(ConnId, SwitchEvent)>,
}

impl Switch {
    /// Sends `n` requests made by `make`, a barrier after every chunk, at most `WINDOW` chunks
    /// unconfirmed; returns when every barrier is confirmed. Refusals and errors are fatal.
    async fn pipelined(&mut self, n: usize, make: &dyn Fn(usize) -> Message) {
        let chunks = n.div_ceil(CHUNK);
        let (mut sent, mut confirmed) = (0usize, 0usize);
        while confirmed < chunks {
            while sent < chunks && sent - confirmed < WINDOW {
                let mut reqs: Vec<Request> = (sent * CHUNK..((sent + 1) * CHUNK).min(n))
                    .map(|i| Request { msg: make(i), tag: i as u64, label: String::new() })
                    .collect();
                reqs.push(Request {
                    msg: Message::BarrierRequest,
                    tag: u64::MAX,
                    label: "barrier".into(),
                });
                self.commands.send(SwitchCommand::Send(reqs)).await.expect("driver gone");
                sent += 1;
            }
            match self.next().await {
                SessionEvent::Confirmed { .. } => confirmed += 1,
                other => panic!("while installing: {other:?}"),
            }
        }
    }

    async fn request(&mut self, msg: Message) -> Vec<Message> {
        let r = Request { msg, tag: 1, label: "bundle control".into() };
        self.commands.send(SwitchCommand::Send(vec![r])).await.expect("driver gone");
        match self.next().await {
            SessionEvent::Reply { replies, .. } => replies,
            other => panic!("waiting for a reply: {other:?}"),
        }
    }

    /// The next session event that matters (echo timings are skipped).
    async fn next(&mut self) -> SessionEvent {
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(300), self.events.recv())
                .await
                .expect("the switch went silent for 5 minutes")
                .expect("driver gone");
            match ev.1 {
                SwitchEvent::Session(SessionEvent::EchoRtt(_)) => {}
                SwitchEvent::Session(e) => return e,
                SwitchEvent::Refused { tag, error } => panic!("request {tag} refused: {error}"),
                SwitchEvent::Accepted { .. } => panic!("a second connection"),
            }
        }
    }
}

fn flow_count(hv: &Hypervisor) -> u64 {
    let out = hv.ofctl(&["dump-aggregate", "br-int", &format!("table={TABLE}")]).expect("dump");
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("flow_count="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no flow_count in {out}"))
}

fn clear(hv: &Hypervisor) {
    hv.ofctl(&["del-flows", "br-int", &format!("table={TABLE}")]).expect("del-flows");
    assert_eq!(flow_count(hv), 0);
}

fn main() -> std::process::ExitCode {
    let n: usize =
        std::env::var("PERISCOPE_BENCH_FLOWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let lab = Lab::new().expect("lab (needs root)");
    let sock = lab.dir().join("of.sock");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let (tx, mut rx) = mpsc::channel(65_536);
    let bound = rt.block_on(Bound::bind(&ListenAddr::Unix(sock.clone()), None)).expect("listen");
    let shared = Shared {
        ids: Arc::new(AtomicU64::new(1)),
        cfg: SessionConfig::default(),
        events: tx,
        app: None,
        log,
    };
    let server = rt.spawn(bound.serve(shared));
    let hv = lab
        .add_hypervisor("hv1", HypervisorOptions::secure().controller(ControllerTarget::Unix(sock)))
        .expect("hypervisor");
    let mut sw = rt.block_on(async {
        let commands = match rx.recv().await.expect("listener") {
            (_, SwitchEvent::Accepted { commands, .. }) => commands,
            other => panic!("before accept: {other:?}"),
        };
        let mut sw = Switch { commands, events: rx };
        match sw.next().await {
            SessionEvent::Ready { .. } => sw,
            other => panic!("handshake: {other:?}"),
        }
    });
    let file = lab.dir().join("flows.txt");
    let text: String = (0..n).map(|i| ofctl_line(i) + "\n").collect();
    std::fs::write(&file, text).expect("flows file");
    let file = file.display().to_string();
    let mut rows = Vec::new();
    let mut record = |method: &str, took: Duration, hv: &Hypervisor| {
        let installed = flow_count(hv);
        assert_eq!(installed, n as u64, "{method}: flows on the bridge");
        let rate = n as f64 / took.as_secs_f64();
        println!("{method:<36} {:>9.0} ms {:>10.0} flows/s", took.as_secs_f64() * 1e3, rate);
        rows.push(json!({"method": method, "flows": n, "ms": took.as_secs_f64() * 1e3,
                         "flows_per_sec": rate}));
        clear(hv);
    };
    println!(
        "{n} flows into one bridge of a userspace ovs-vswitchd (table {TABLE}, chunks of {CHUNK})"
    );
    clear(&hv);
    for round in 0..2 {
        let t = Instant::now();
        hv.ofctl(&["add-flows", "br-int", &file]).expect("ovs-ofctl add-flows");
        record(&format!("ovs-ofctl add-flows #{round}"), t.elapsed(), &hv);

        let t = Instant::now();
        hv.ofctl(&["--bundle", "add-flows", "br-int", &file]).expect("ovs-ofctl --bundle");
        record(&format!("ovs-ofctl --bundle add-flows #{round}"), t.elapsed(), &hv);

        let t = Instant::now();
        rt.block_on(sw.pipelined(n, &|i| Message::FlowMod(Box::new(flow_mod(i)))));
        record(&format!("periscope flow mods + barrier #{round}"), t.elapsed(), &hv);

        let t = Instant::now();
        rt.block_on(async {
            let id = BundleId(round + 1);
            let flags = BUNDLE_ATOMIC | BUNDLE_ORDERED;
            let ctrl = |ctrl_type| {
                Message::BundleControl(BundleControl {
                    bundle_id: id,
                    ctrl_type,
                    flags,
                    properties: Vec::new(),
                })
            };
            sw.request(ctrl(BundleCtrlType::OpenRequest)).await;
            sw.pipelined(n, &|i| {
                Message::BundleAdd(BundleAdd {
                    bundle_id: id,
                    flags,
                    // The session gives the inner message the bundle add's xid.
                    message: Box::new(OfpMessage {
                        version: OFP_VERSION_1_3,
                        xid: Xid(0),
                        msg: Message::FlowMod(Box::new(flow_mod(i))),
                    }),
                    properties: Vec::new(),
                })
            })
            .await;
            let reply = sw.request(ctrl(BundleCtrlType::CommitRequest)).await;
            assert!(
                matches!(reply.as_slice(), [Message::BundleControl(b)] if b.ctrl_type == BundleCtrlType::CommitReply),
                "commit: {reply:?}"
            );
        });
        record(&format!("periscope bundle #{round}"), t.elapsed(), &hv);
    }
    if let Ok(p) = std::env::var("PERISCOPE_BENCH_JSON") {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let body = json!({"bench": "flow_install", "flows": n, "chunk": CHUNK, "window": WINDOW,
                          "loadavg": load.trim(), "results": rows});
        std::fs::write(&p, serde_json::to_string_pretty(&body).unwrap_or_default())
            .expect("writing the JSON");
    }
    server.abort();
    std::process::ExitCode::SUCCESS
}
