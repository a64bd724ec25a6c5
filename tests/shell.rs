//! What a network engineer reads from a running controller on real Open vSwitch: `GET /metrics`
//! in the Prometheus text format, and `periscope shell -c ...` showing the switch, where a VM
//! is and its taps.

mod mirror_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mirror_support::{post, wait_for};
use periscope::lab::controller::ControllerProcess;
use periscope::lab::{ControllerTarget, HypervisorOptions, Lab, VmOptions};
use serde_json::json;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// `GET path` as plain text: `(status, content type, body)`.
fn get_text(api: SocketAddr, token: Option<&str>, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(api).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n{auth}\r\n")
        .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("headers");
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type").then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ctype, body.to_string())
}

/// The value of the sample `key` (`name{labels}` exactly as written), if present.
fn sample(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn an_engineer_sees_the_switch_the_vm_and_its_tap() {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .expect("hv1");
    let hv2 = lab
        .add_hypervisor(
            "hv2",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .expect("hv2");
    let mut vm =
        lab.add_vm(&hv, VmOptions::new("vm1").external_id("tenant-id", "bank-a")).expect("vm1");
    let col = lab.add_collector("col").expect("collector");
    let args = vec![
        format!("--openflow=punix:{}", sock.display()),
        format!("--ovsdb=hv1={}", hv.db_remote()),
        format!("--ovsdb=hv2={}", hv2.db_remote()),
    ];
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("bank-a's collectors");
    let svc = post(
        &ctl,
        "/v1/tap_services",
        json!({"name": "perf", "tenant": "bank-a", "encap": "vxlan",
               "remote_ip": col.ip().to_string(), "key": 4242}),
    );
    let flow = post(
        &ctl,
        "/v1/tap_flows",
        json!({"name": "vm1-both", "tenant": "bank-a", "tap_service": svc["id"],
               "source": {"iface_id": vm.iface_id()}, "direction": "BOTH"}),
    );
    let path = format!("/v1/tap_flows/{}", flow["id"]);
    wait_for("the tap flow to be active and programmed", Duration::from_secs(20), || {
        ctl.call("GET", &path, None)
            .is_ok_and(|(_, f)| f["status"] == "ACTIVE" && f["active"][0]["programmed"] == true)
    });
    wait_for("both switches", Duration::from_secs(20), || {
        ctl.call("GET", "/v1/switches", None)
            .is_ok_and(|(_, l)| l.as_array().is_some_and(|l| l.len() == 2))
    });
    let dpid = format!("{:016x}", hv.dpid());

    // A reconciliation's progress: both switches confirm what they should hold.
    wait_for("both switches programmed", Duration::from_secs(20), || {
        ctl.call("GET", "/v1/stats", None).is_ok_and(|(_, s)| s["switches_programmed"] == 2)
    });

    // Prometheus: text format 0.0.4, the operator's token needed.
    let (status, _, _) = get_text(ctl.api(), None, "/metrics");
    assert_eq!(status, 401);
    let (status, ctype, text) = get_text(ctl.api(), ctl.token(), "/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/plain") && ctype.contains("version=0.0.4"), "{ctype}");
    assert_eq!(sample(&text, "periscope_switches_connected"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "periscope_switches_programmed"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "periscope_hypervisors_connected"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "periscope_tap_flows_active"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "periscope_tunnel_ports"), Some(1.0), "vm1's VXLAN port: {text}");
    let flows = sample(&text, &format!("periscope_switch_flows{{dpid=\"{dpid}\"}}"));
    assert!(flows.is_some_and(|n| n >= 3.0), "the pipeline and the copies: {text}");
    let mods = sample(
        &text,
        "periscope_openflow_messages_total{direction=\"out\",type=\"OFPT_FLOW_MOD\"}",
    );
    assert!(mods.is_some_and(|n| n >= 3.0), "{text}");
    let barriers = sample(&text, "periscope_barrier_rtt_seconds_count").unwrap_or(0.0);
    assert!(barriers >= 1.0, "{text}");
    let inf = sample(&text, "periscope_barrier_rtt_seconds_bucket{le=\"+Inf\"}");
    assert_eq!(inf, Some(barriers), "+Inf counts every observation");
    assert!(sample(&text, "periscope_reprogram_seconds_count").is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(sample(&text, "periscope_openflow_malformed_total"), Some(0.0));
    let snapshots = sample(&text, "periscope_ovsdb_events_total{type=\"snapshot\"}");
    assert!(snapshots.is_some_and(|n| n >= 2.0), "one monitor snapshot per hypervisor: {text}");
    for q in ["switch_events", "ovsdb_events", "api_calls"] {
        let depth = sample(&text, &format!("periscope_queue_depth{{queue=\"{q}\"}}"));
        assert!(depth.is_some_and(|d| d >= 0.0), "{q}: {text}");
    }

    // The shell, one command at a time, as an engineer types it.
    let shell = Shell { api: ctl.api(), token: ctl.token().expect("operator token").to_string() };
    // On this host, the data directory is enough: its socket and its operator token.
    let data = lab.dir().join("controller.data");
    let out = std::process::Command::new(PERISCOPE)
        .args(["shell", "--data-dir"])
        .arg(&data)
        .args(["-c", "show switches"])
        .env_remove("PERISCOPE_TOKEN")
        .output()
        .expect("periscope shell --data-dir");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().any(|l| l.starts_with(&dpid)), "{text}");
    let out = shell.ok(&["-c", "show switches"]);
    let row = out.lines().find(|l| l.starts_with(&dpid)).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("hv1") && row.contains("br-int") && row.contains(" ago)"), "{out}");
    let ofport = vm.ofport().expect("vm1's ofport");
    let place = format!("  at hv1 dpid {dpid} ofport {ofport}");
    let out = shell.ok(&["-c", &format!("where {}", vm.iface_id())]);
    assert!(out.contains("owner bank-a"), "{out}");
    assert!(out.lines().any(|l| l == place), "{place:?} in {out}");
    assert!(out.contains("tap flow vm1-both (BOTH, ACTIVE)"), "{out}");
    assert!(out.contains(" programmed last reprogram "), "{out}");
    // By the OVS port name too.
    let out = shell.ok(&["-c", &format!("where {}", vm.port())]);
    assert!(out.lines().any(|l| l == place), "{out}");
    let out = shell.ok(&["-c", "show taps bank-a"]);
    let line = out.lines().find(|l| l.contains("vm1-both")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("ACTIVE") && line.contains("hv1") && line.contains("BOTH"), "{out}");
    assert!(out.contains("4242") && out.contains(&col.ip().to_string()), "{out}");
    // vm1 asks for an address nobody has: its ARP requests are copied, and counted.
    let nobody = std::net::Ipv4Addr::new(198, 51, 100, 254);
    let _ = vm.ping(nobody, 2, Duration::from_millis(100));
    let out = shell.ok(&["-c", "show tap vm1-both"]);
    assert!(out.contains(&format!("vxlan to {} key 4242", col.ip())), "{out}");
    let copies = format!("    hv1/br-int ({dpid}): ");
    let counted = out.lines().find(|l| l.starts_with(&copies)).unwrap_or_else(|| panic!("{out}"));
    let packets: u64 = counted[copies.len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(packets >= 1 && counted.ends_with(" copy flows"), "{out}");
    let out = shell.ok(&["-c", "show topology"]);
    assert!(out.contains(&format!("bridge br-int dpid {dpid} connected")), "{out}");
    assert!(out.lines().any(|l| l.contains(vm.port()) && l.contains(vm.iface_id())), "{out}");
    let out = shell.ok(&["-c", "show ports hv1/br-int"]);
    let row = out
        .lines()
        .find(|l| l.starts_with(&format!("{ofport} ")))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains(vm.port()) && row.contains(" up ") && row.contains(vm.iface_id()),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("LOCAL") && l.contains("br-int")), "{out}");
    let out = shell.ok(&["--json", "-c", "show switches"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("--json is JSON");
    assert_eq!(list[0]["dpid"], dpid.as_str(), "{list}");
    assert!(list[0]["our_flows"].as_u64().is_some_and(|n| n >= 3), "{list}");

    // dump-flows reads the switch itself: the same flows, in the same syntax, as ovs-ofctl.
    // Someone else's flow on the bridge: in the full dump, not in ours.
    hv.ofctl(&["add-flow", "br-int", "table=9,priority=7,cookie=0x77,actions=drop"])
        .expect("add-flow");
    let ofctl = hv.ofctl(&["dump-flows", "br-int"]).expect("ovs-ofctl dump-flows");
    let (code, _, err) = shell.run(&["-c", "dump-flows br-int"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("several hypervisors") && err.contains("hv2/br-int"), "{err}");
    let ours = shell.ok(&["-c", "dump-flows hv1/br-int --ours"]);
    assert_eq!(
        flow_lines(&ours),
        flow_lines(&ofctl).into_iter().filter(|l| l.contains("cookie=0x5053")).collect::<Vec<_>>(),
        "ours:\n{ours}\novs-ofctl:\n{ofctl}"
    );
    assert!(flow_lines(&ours).len() >= 3, "{ours}");
    let all = shell.ok(&["-c", &format!("dump-flows 0x{dpid}")]);
    assert_eq!(flow_lines(&all), flow_lines(&ofctl), "all:\n{all}\novs-ofctl:\n{ofctl}");
    assert!(all.contains("cookie=0x77, ") && !ours.contains("cookie=0x77, "), "{all}");
    let (code, _, err) = shell.run(&["-c", "dump-flows br-nope"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no connected switch is \"br-nope\"") && err.contains("hv1/br-int"),
        "{err}"
    );

    // diff: in sync, until someone changes the bridge behind periscope's back.
    let out = shell.ok(&["-c", "diff hv1/br-int"]);
    assert!(out.contains(&format!("hv1/br-int ({dpid}): in sync: the ")), "{out}");
    let copy_to_vm =
        ours.lines().find(|l| l.contains("table=3,")).expect("the copy of delivered frames");
    hv.ofctl(&["del-flows", "br-int", "table=3,cookie=0x5053020000000000/0xffffff0000000000"])
        .expect("del-flows");
    hv.ofctl(&["add-flow", "br-int", "table=9,priority=5,cookie=0x5053010000000099,actions=drop"])
        .expect("add-flow");
    let out = shell.ok(&["-c", &format!("diff {dpid}")]);
    assert!(out.contains("NOT in sync"), "{out}");
    let missing = out
        .lines()
        .skip_while(|l| !l.starts_with("wanted, not on the switch"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        missing.starts_with("- ") && flow_lines(&missing[2..]) == flow_lines(copy_to_vm),
        "{missing:?} vs {copy_to_vm:?}:\n{out}"
    );
    assert!(
        out.contains("ours on the switch, not wanted:\n+ cookie=0x5053010000000099, "),
        "{out}"
    );

    // A typo gets the nearest command's usage and status 2; a wrong token the API's refusal.
    let (code, _, err) = shell.run(&["-c", "shwo switches"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("did you mean \"show switches\"") && err.contains("usage: show switches"),
        "{err}"
    );
    let (code, _, err) =
        Shell { token: "psc_wrong".into(), ..shell.clone() }.run(&["-c", "stats"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("401") && err.contains("unauthorized"), "{err}");
    let (code, _, err) = shell.run(&["-c", "where no-such-port"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no interface has iface-id, vm-uuid or name \"no-such-port\""), "{err}");

    // At a terminal (a pty, through script(1)): completion, history, the nearest command.
    let home = lab.dir().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut term = Pty::start(&shell, &home);
    term.expect("periscope> ");
    term.send("sh\tsw\t");
    term.expect("periscope> show switches \x1b[K");
    term.send("\r");
    term.expect(&dpid);
    term.expect("periscope> ");
    term.send("\x1b[A");
    term.expect("periscope> show switches\x1b[K");
    term.send("\r");
    term.expect(&dpid);
    // Arguments complete from what the controller knows: bridges, interfaces.
    term.send("diff hv1/b\t");
    term.expect("periscope> diff hv1/br-int \x1b[K");
    term.send("\x15");
    let id = vm.iface_id();
    term.send(&format!("where {}\t", &id[..id.len() - 3]));
    term.expect(&format!("periscope> where {id} \x1b[K"));
    term.send("\r");
    term.expect(&format!("iface-id {id}: owner"));
    term.expect("periscope> ");
    term.send(&format!("wher {}\r", vm.iface_id()));
    term.expect("did you mean \"where\"");
    term.expect("periscope> ");
    term.send("\x04");
    assert_eq!(term.wait(), Some(0), "Ctrl-D leaves: {}", term.seen());
    let history = std::fs::read_to_string(home.join(".periscope_history")).expect("history");
    assert_eq!(history.lines().next(), Some("show switches"), "{history}");

    // A live migration to hv2: where shows the new place and how long each side took.
    let dpid2 = format!("{:016x}", hv2.dpid());
    vm.migrate(&hv2).expect("migration");
    let ofport2 = vm.ofport().expect("the new port");
    let to = format!("to hv2 dpid {dpid2} ofport {ofport2}: destination programmed after ");
    let mut out = String::new();
    let done =
        periscope::lab::wait_until("the migration in where", Duration::from_secs(20), || {
            out = shell.ok(&["-c", &format!("where {}", vm.iface_id())]);
            out.contains(&to) && !out.contains(" - later") && !out.contains("after -")
        });
    assert!(
        done.is_ok(),
        "where does not show the migration done and both sides confirmed:\n{out}"
    );
    assert!(out.lines().any(|l| l == format!("  at hv2 dpid {dpid2} ofport {ofport2}")), "{out}");
    assert!(
        out.contains(&format!(" migration from hv1 dpid {dpid} ofport {ofport} {to}")),
        "{out}"
    );
    let (_, _, text) = get_text(ctl.api(), ctl.token(), "/metrics");
    assert_eq!(sample(&text, "periscope_migrations_finished_total"), Some(1.0), "{text}");
    // events: what happened, in order; --follow shows what happens next.
    let out = shell.ok(&["-c", "events"]);
    let started =
        out.lines().position(|l| l.contains(" migration_started ") && l.contains(vm.iface_id()));
    let finished =
        out.lines().position(|l| l.contains(" migration_finished ") && l.contains(vm.iface_id()));
    assert!(started.is_some() && started < finished, "{out}");
    assert!(out.contains(&format!(" bridge_reprogrammed dpid={dpid2} ")), "{out}");
    let mut follow = std::process::Command::new(PERISCOPE)
        .args(["shell", "--api", &shell.api.to_string(), "--token", &shell.token])
        .args(["-c", "events --follow"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("events --follow");
    let seen = Arc::new(Mutex::new(String::new()));
    let mut pipe = follow.stdout.take().expect("stdout");
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = sink.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    let text = || seen.lock().map(|s| s.clone()).unwrap_or_default();
    wait_for("the recent events", Duration::from_secs(10), || !text().is_empty());
    std::thread::sleep(Duration::from_millis(700));
    let before = text().len();
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");
    let vm2_id = format!(" iface_id={} ", vm2.iface_id());
    let appeared =
        periscope::lab::wait_until("vm2 in events --follow", Duration::from_secs(10), || {
            text()[before..].lines().any(|l| {
                l.contains(" interface_appeared ")
                    && l.contains(&vm2_id)
                    && l.contains(" location=hv1 ")
            })
        });
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(appeared.is_ok(), "after {before} bytes: {}", text());

    // trace: a frame from the VM at its new place is forwarded and copied to the collector
    // with the tenant's key; the old place forwards such a frame and copies nothing.
    let out = shell.ok(&["-c", &format!("trace hv2/br-int in_port={ofport2}")]);
    assert!(out.contains("  NORMAL (the switch's own forwarding)"), "{out}");
    let copy = out.lines().find(|l| l.contains("tun_id=")).unwrap_or_else(|| panic!("{out}"));
    assert!(copy.contains("(psc-vx-") && copy.contains("tun_id=0x1092 (4242)"), "{out}");
    assert!(copy.contains(&format!("tun_dst={}", col.ip())), "{out}");
    let out = shell.ok(&["-c", &format!("trace hv1/br-int in_port={ofport}")]);
    assert!(out.contains("NORMAL") && !out.contains("tun_id="), "{out}");
    let (code, _, err) = shell.run(&["-c", "trace hv2/br-int in_prot=1"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("bad_packet") && err.contains("in_prot"), "{err}");

    // The log level, read and changed while the controller runs.
    assert_eq!(shell.ok(&["-c", "log level"]), "log level debug\n");
    assert_eq!(shell.ok(&["-c", "log level warn"]), "log level warning\n");
    assert_eq!(shell.ok(&["-c", "log level"]), "log level warning\n");
    wait_for("the change in the log", Duration::from_secs(5), || {
        ctl.log().contains("log level changed")
    });
    // At warn the API's debug lines stop; back at debug they come again.
    let mark = ctl.log().len();
    shell.ok(&["-c", "stats"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ctl.log()[mark..].contains("API request"), "{}", &ctl.log()[mark..]);
    let (code, _, err) = shell.run(&["-c", "log level loud"], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("\"loud\"") && err.contains("debug, trace"), "{err}");
    assert_eq!(shell.ok(&["-c", "log level debug"]), "log level debug\n");
    // stats: the totals, and their rates over a second.
    let out = shell.ok(&["-c", "stats"]);
    let line = |key: &str| out.lines().find(|l| l.starts_with(key)).unwrap_or_default();
    assert!(
        line("messages ").contains("openflow_out ") && line("messages ").contains("ovsdb_events "),
        "{out}"
    );
    assert!(line("rates_per_s ").contains("openflow_in "), "{out}");
    assert!(line("queues ").contains("switch_events "), "{out}");
    wait_for("debug lines again", Duration::from_secs(5), || {
        ctl.log()[mark..].contains("API request")
    });

    // Lines from a pipe, like a script: every one answered, the errors on stderr.
    let (code, out, err) = shell.run(&[], Some("help\nstats\nshow swiches\nquit\nstats\n"));
    assert_eq!(code, Some(1), "a failed line fails the script: {err}");
    assert!(out.contains("dump-flows <bridge|dpid> [--ours]"), "help: {out}");
    assert_eq!(out.matches("tap_flows_active").count(), 1, "stats once, nothing after quit: {out}");
    assert!(err.contains("did you mean \"show switches\""), "{err}");

    ctl.stop();
}

/// The flow lines of a dump, without what changes from one read to the next (age and
/// counters), sorted.
fn flow_lines(dump: &str) -> Vec<String> {
    let mut out: Vec<String> = dump
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| {
            l.trim()
                .split(", ")
                .filter(|f| {
                    !["duration=", "n_packets=", "n_bytes=", "idle_age="]
                        .iter()
                        .any(|p| f.starts_with(p))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    out.sort();
    out
}

/// `periscope shell` against one controller.
#[derive(Clone)]
struct Shell {
    api: SocketAddr,
    token: String,
}

impl Shell {
    /// Runs the shell with `args` (and `stdin`): exit code, stdout, stderr.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
        let mut child = std::process::Command::new(PERISCOPE)
            .args(["shell", "--api", &self.api.to_string(), "--token", &self.token])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("periscope shell");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.unwrap_or("").as_bytes()).expect("stdin");
        }
        let out = child.wait_with_output().expect("shell output");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs it, expecting success; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None);
        assert_eq!(code, Some(0), "periscope shell {args:?}: {err}{out}");
        out
    }
}

/// `periscope shell` on a terminal: script(1) gives it a pty and passes keys and output along.
struct Pty {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: Arc<Mutex<String>>,
    /// How much of the output earlier expectations consumed.
    read: usize,
}

impl Pty {
    fn start(shell: &Shell, home: &std::path::Path) -> Pty {
        let cmd = format!("{PERISCOPE} shell --api {} --token {}", shell.api, shell.token);
        let mut child = std::process::Command::new("script")
            .args(["-q", "-e", "-f", "-c", &cmd, "/dev/null"])
            .env("HOME", home)
            .env("TERM", "xterm")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("script(1) (util-linux)");
        let input = child.stdin.take().expect("stdin");
        let mut stdout = child.stdout.take().expect("stdout");
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut o) = sink.lock() {
                    o.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Pty { child, input, output, read: 0 }
    }

    fn seen(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn send(&mut self, keys: &str) {
        self.input.write_all(keys.as_bytes()).expect("keys");
        self.input.flush().expect("flush");
    }

    /// Waits for `text` to appear after what earlier expectations consumed.
    fn expect(&mut self, text: &str) {
        let start = Instant::now();
        loop {
            let seen = self.seen();
            if let Some(at) = seen.get(self.read..).and_then(|s| s.find(text)) {
                self.read += at + text.len();
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{text:?} not shown; the terminal showed {:?}",
                &seen[self.read.min(seen.len())..]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait(&mut self) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
