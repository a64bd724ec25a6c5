//! Restarts and reconnects on real Open vSwitch: a controller restarted with nothing changed
//! meanwhile sends no flow mod while the bridges keep forwarding and copying; a migration done
//! while it was down is caught up when it comes back; an ovs-vswitchd restart loses the flows
//! and the controller puts them back; an ovsdb-server restart leaves exactly one tunnel port.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{Capture, Collector, EchoKind, Hypervisor, Lab, PingReport, Vm, VmOptions};
use periscope::scenario::ovs;
use serde_json::{json, Value};

mod mirror_support;

use mirror_support::{controller, echo_seqs, has_port, post, star, wait_for};

/// Nanoseconds since the Unix epoch, the collector's clock.
fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// How many FLOW_MODs this controller process has sent (`GET /metrics`; absent means none).
fn flow_mods_sent(ctl: &ControllerProcess) -> u64 {
    let (status, text) = ctl.call_text("GET", "/metrics").expect("metrics");
    assert_eq!(status, 200, "{text}");
    let series = "periscope_openflow_messages_total{direction=\"out\",type=\"OFPT_FLOW_MOD\"}";
    text.lines()
        .filter_map(|l| l.strip_prefix(series))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Waits until the controller reports every one of `n` bridges programmed.
fn wait_programmed(ctl: &ControllerProcess, n: u64) {
    wait_for("every bridge programmed", Duration::from_secs(20), || {
        ctl.call("GET", "/v1/stats", None).is_ok_and(|(_, s)| s["switches_programmed"] == n)
    });
}

/// Whether the tap flow is active and programmed on `hv`.
fn programmed_on(ctl: &ControllerProcess, flow: &Value, hv: &Hypervisor) -> bool {
    ctl.call("GET", &format!("/v1/tap_flows/{}", flow["id"]), None).is_ok_and(|(_, v)| {
        v["active"].as_array().is_some_and(|a| {
            a.iter().any(|l| l["hypervisor"] == hv.name() && l["programmed"] == true)
        })
    })
}

/// Lets every bridge retry a lost controller every second (the default backs off to 8 s).
fn fast_reconnect(hvs: &[&Hypervisor]) {
    for hv in hvs {
        ovs::fast_reconnect(hv).expect("max_backoff");
    }
}

/// Asserts that every echo `pinger` got answered by `vm` was copied under `key`, requests and
/// replies, exactly once.
fn assert_copied_once(cap: &Capture, key: u32, report: &PingReport, pinger: &Vm, vm: &Vm) {
    let replied: std::collections::BTreeSet<u16> =
        report.replies.iter().map(|r| r.seq as u16).collect();
    assert!(!replied.is_empty(), "no echo answered: {:?}", report.lost());
    for (kind, src, dst) in
        [(EchoKind::Request, pinger.ip(), vm.ip()), (EchoKind::Reply, vm.ip(), pinger.ip())]
    {
        let copied = echo_seqs(cap, key, kind, src, dst);
        let missing: Vec<_> = replied.difference(&copied).collect();
        assert!(missing.is_empty(), "{kind:?}s answered but not copied: {missing:?}");
    }
    assert_eq!(cap.duplicates().len(), 0, "duplicate copies: {:?}", cap.duplicates());
}

/// `pinger` pings `vm` 30 times; every echo answered is copied exactly once. Stops the collector
/// and returns what it received from then on.
fn ping_copied_once(pinger: &Vm, vm: &Vm, col: &mut Collector, key: u32) -> Capture {
    let after = now_ns();
    let report = pinger.ping(vm.ip(), 30, Duration::from_millis(20)).expect("ping after");
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop().expect("capture");
    let fresh = Capture {
        frames: cap.frames.into_iter().filter(|f| f.t_ns >= after).collect(),
        ..Default::default()
    };
    assert!(report.received >= 28, "{} reachable: {:?}", vm.name(), report.lost());
    assert_copied_once(&fresh, key, &report, pinger, vm);
    fresh
}

/// A tapped vm1 on hv1 (VXLAN service to one collector), a pinger vm3 on hv3, the controller
/// with every bridge programmed.
struct Setup {
    lab: Lab,
    hvs: [Hypervisor; 3],
    vm1: Vm,
    vm3: Vm,
    col: Collector,
    ctl: ControllerProcess,
    key: u32,
    flow: Value,
}

fn setup() -> Setup {
    let lab = Lab::new().expect("lab");
    let hvs = star(&lab);
    let [hv1, hv2, hv3] = &hvs;
    fast_reconnect(&[hv1, hv2, hv3]);
    let vm1 =
        lab.add_vm(hv1, VmOptions::new("vm1").external_id("tenant-id", "bank-a")).expect("vm1");
    let vm3 =
        lab.add_vm(hv3, VmOptions::new("vm3").external_id("tenant-id", "bank-a")).expect("vm3");
    let col = lab.add_collector("col").expect("collector");
    let ctl = controller(&lab, &[hv1, hv2, hv3]);
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("bank-a's collectors");
    let svc = post(
        &ctl,
        "/v1/tap_services",
        json!({"name": "perf-a", "tenant": "bank-a", "encap": "vxlan", "remote_ip": col.ip().to_string()}),
    );
    let key = svc["key"].as_u64().expect("key") as u32;
    let flow = post(
        &ctl,
        "/v1/tap_flows",
        json!({"name": "vm1", "tenant": "bank-a", "tap_service": svc["id"], "source": {"vm": vm1.vm_uuid()}, "direction": "BOTH"}),
    );
    wait_for("vm1's tunnel port on hv1", Duration::from_secs(20), || has_port(hv1, "psc-vx-"));
    wait_programmed(&ctl, 3);
    wait_for("hv1 programmed for the tap", Duration::from_secs(20), || {
        programmed_on(&ctl, &flow, hv1)
    });
    // Warm up MAC learning and tunnel neighbours.
    assert_eq!(vm3.ping(vm1.ip(), 3, Duration::from_millis(50)).expect("warm-up").received, 3);
    Setup { lab, hvs, vm1, vm3, col, ctl, key, flow }
}

#[test]
fn a_restarted_controller_changes_nothing_and_catches_up_a_migration() {
    let Setup { lab, hvs, mut vm1, vm3, mut col, ctl, key, flow } = setup();
    let [hv1, hv2, hv3] = &hvs;

    // 1. A clean restart under traffic, nothing changed meanwhile.
    let run = vm3.ping_start(vm1.ip(), 120, Duration::from_millis(50)).expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    ctl.stop();
    let down = now_ns();
    std::thread::sleep(Duration::from_millis(1500));
    let up = now_ns();
    let ctl = controller(&lab, &[hv1, hv2, hv3]);
    wait_programmed(&ctl, 3);
    let report = run.wait().expect("ping report");
    // Whatever it did since, the new process sent no flow mod: it read what the bridges had.
    let sent = flow_mods_sent(&ctl);
    assert_eq!(sent, 0, "flow mods after a restart with nothing changed");
    let cap = col.capture().expect("capture");
    assert!(report.lost().len() <= 2, "forwarding across the restart: lost {:?}", report.lost());
    assert_copied_once(&cap, key, &report, &vm3, &vm1);
    let while_down = cap
        .frames
        .iter()
        .filter(|f| f.key == Some(key) && f.icmp.is_some() && (down..up).contains(&f.t_ns))
        .count();
    assert!(while_down >= 20, "copies while the controller was down: {while_down}");
    eprintln!(
        "restart: ping {}/{}, {while_down} copies while down, {sent} flow mods after",
        report.received, report.sent
    );

    // 2. kill -9, migrate vm1 to hv2 while no controller runs, start it again.
    ctl.kill();
    vm1.migrate(hv2).expect("migrate while the controller is down");
    let started = Instant::now();
    let ctl = controller(&lab, &[hv1, hv2, hv3]);
    // The time the three bridges are connected again, then the time hv2 serves the tap
    // (polled every 5 ms).
    let mut reconnected = None;
    let caught_up = loop {
        if reconnected.is_none()
            && ctl.call("GET", "/v1/stats", None).is_ok_and(|(_, s)| s["switches"] == 3)
        {
            reconnected = Some(started.elapsed());
        }
        if programmed_on(&ctl, &flow, hv2) {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the destination never programmed");
        std::thread::sleep(Duration::from_millis(5));
    };
    let reconnected = reconnected.unwrap_or(caught_up);
    eprintln!(
        "migration while down: bridges reconnected {:.0} ms after the controller started, \
         destination programmed {:.0} ms after that",
        reconnected.as_secs_f64() * 1e3,
        (caught_up - reconnected).as_secs_f64() * 1e3
    );
    wait_for("hv1 cleaned of vm1's tap", Duration::from_secs(10), || {
        !has_port(hv1, "psc-vx-") && ovs::leftover_flows(hv1).is_ok_and(|f| f.is_empty())
    });
    let fresh = ping_copied_once(&vm3, &vm1, &mut col, key);
    assert!(
        fresh
            .frames
            .iter()
            .filter(|f| f.key == Some(key))
            .all(|f| f.outer_src == hv2.underlay_ip()),
        "copies come from the destination only"
    );
    assert!(has_port(hv2, "psc-vx-"), "the destination has its tunnel port");
}

/// hv1's tunnel neighbours: the other hypervisors and the collector.
fn neighbours(hvs: &[Hypervisor; 3], col: &Collector) -> Vec<(Ipv4Addr, String)> {
    let mut n: Vec<_> =
        hvs[1..].iter().map(|h| (h.underlay_ip(), h.underlay_mac().to_string())).collect();
    n.push((col.ip(), col.mac().to_string()));
    n
}

#[test]
fn switch_restarts_lose_nothing_for_long() {
    let Setup { lab: _lab, hvs, vm1, vm3, mut col, ctl, key, flow } = setup();
    let hv1 = &hvs[0];

    // 3. ovs-vswitchd restart: its flows are gone; the controller restores them.
    let run = vm3.ping_start(vm1.ip(), 200, Duration::from_millis(20)).expect("ping");
    std::thread::sleep(Duration::from_millis(300));
    let restart = now_ns();
    ovs::restart_vswitchd(hv1, &neighbours(&hvs, &col)).expect("restart ovs-vswitchd");
    let restarted = now_ns();
    wait_for("hv1 programmed again", Duration::from_secs(20), || programmed_on(&ctl, &flow, hv1));
    let cap = col
        .wait_for(Duration::from_secs(10), |c| {
            c.frames.iter().any(|f| f.key == Some(key) && f.t_ns > restarted)
        })
        .expect("capture");
    let first = cap
        .frames
        .iter()
        .filter(|f| f.key == Some(key) && f.t_ns > restarted)
        .map(|f| f.t_ns)
        .min();
    let first = first.expect("copies resume after an ovs-vswitchd restart");
    eprintln!(
        "ovs-vswitchd restart: first copy {:.0} ms after the restart began",
        (first - restart) as f64 / 1e6
    );
    run.wait().expect("ping report");

    // 4. ovsdb-server restart: exactly one tunnel port, and copies still flow.
    let tunnel_changes =
        |ctl: &ControllerProcess| ctl.log().matches("changing tunnel ports").count();
    let before = tunnel_changes(&ctl);
    ovs::restart_ovsdb(hv1).expect("restart ovsdb-server");
    // Give the controller time to resync its monitor (and to do anything wrong it would do).
    std::thread::sleep(Duration::from_secs(2));
    wait_programmed(&ctl, 3);
    let ports = ovs::tunnel_ports(hv1).expect("tunnel ports");
    let ours: Vec<_> = ports.iter().filter(|p| p.starts_with("psc-")).collect();
    assert_eq!(ours.len(), 1, "one periscope tunnel port per encapsulation: {ports:?}");
    assert!(ours[0].starts_with("psc-vx-"), "{ports:?}");
    assert_eq!(tunnel_changes(&ctl), before, "tunnel ports changed by an ovsdb-server restart");
    ping_copied_once(&vm3, &vm1, &mut col, key);
}
