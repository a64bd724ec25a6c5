//! Guest mode on real Open vSwitch beside a real owner of br-int: os-ken's `simple_switch_13`,
//! then faucet. periscope (`run --mode guest`) connects to every bridge as a second controller,
//! mirrors a VM through a live migration, and leaves the owner's flows and forwarding as they
//! were; beside faucet it also survives the owner wiping every flow when it reconnects.
//!
//! The peers' virtual environments come from `benches/peers/setup.sh` (run by `.ci/setup`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{
    Capture, ControllerTarget, EchoKind, Encap, Hypervisor, HypervisorOptions, Lab, TunnelKey,
    TunnelKind, TunnelRemote, Vm, VmOptions,
};
use serde_json::json;

mod mirror_support;

use mirror_support::{echo_seqs, has_port, migrate_once_programmed, post, wait_for};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");
/// How long faucet's restart, its wipe and periscope's restore may each take.
const WIPE_WAIT: Duration = Duration::from_secs(20);
const PINGS: u32 = 100;
/// periscope's cookies, as `ovs-ofctl dump-flows` prints them.
const OURS: &str = "cookie=0x5053";

/// The controller that owns br-int's forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerKind {
    /// os-ken 3.x running os-ken 1.4.1's `simple_switch_13.py`, unmodified.
    SimpleSwitch13,
    /// faucet, one VLAN over every port of every bridge.
    Faucet,
}

/// A running owner, stopped by pid when dropped.
struct Owner {
    child: Child,
    kind: OwnerKind,
    port: u16,
    dir: PathBuf,
    dpids: Vec<u64>,
}

fn peers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/peers")
}

/// A TCP port nobody listens on now (the owners take no unix socket).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

impl Owner {
    fn start(kind: OwnerKind, dir: &Path, dpids: &[u64]) -> Owner {
        let port = free_port();
        let child = Self::spawn(kind, dir, port, dpids);
        let o = Owner { child, kind, port, dir: dir.into(), dpids: dpids.into() };
        o.wait_listening();
        o
    }

    fn wait_listening(&self) {
        let filter = format!("sport = :{}", self.port);
        wait_for("the owner listening", Duration::from_secs(30), || {
            Command::new("ss").args(["-Hltn", &filter]).output().is_ok_and(|o| !o.stdout.is_empty())
        });
    }

    fn spawn(kind: OwnerKind, dir: &Path, port: u16, dpids: &[u64]) -> Child {
        let peers = peers();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("owner.log"))
            .expect("owner log");
        let mut cmd = match kind {
            OwnerKind::SimpleSwitch13 => {
                let app = peers.join("apps/simple_switch_13.py");
                assert!(app.exists(), "{} is missing: run benches/peers/setup.sh", app.display());
                let mut c = Command::new(peers.join("osken/bin/osken-manager"));
                c.args(["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port"])
                    .arg(port.to_string())
                    .arg(app);
                c
            }
            OwnerKind::Faucet => {
                let bin = peers.join("faucet/bin");
                assert!(
                    bin.join("faucet").exists(),
                    "faucet is missing: run benches/peers/setup.sh"
                );
                let config = dir.join("faucet.yaml");
                std::fs::write(&config, faucet_yaml(dpids)).expect("faucet.yaml");
                let mut c = Command::new(bin.join("faucet"));
                c.args(["--ryu-ofp-listen-host", "127.0.0.1", "--ryu-ofp-tcp-listen-port"])
                    .arg(port.to_string())
                    .env(
                        "PATH",
                        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()),
                    )
                    .env("FAUCET_CONFIG", &config)
                    .env("FAUCET_LOG", dir.join("faucet.log"))
                    .env("FAUCET_EXCEPTION_LOG", dir.join("faucet-exception.log"))
                    .env("FAUCET_PROMETHEUS_ADDR", "127.0.0.1")
                    .env("FAUCET_PROMETHEUS_PORT", free_port().to_string());
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("owner log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting the owner {kind:?}: {e}"))
    }

    /// Stops the owner and starts it again on the same port (faucet then wipes every flow of
    /// every bridge when it reconnects, cookie mask 0, and installs its own again).
    fn restart(&mut self) {
        self.stop();
        self.child = Self::spawn(self.kind, &self.dir, self.port, &self.dpids);
        self.wait_listening();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.join("owner.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.join("faucet.log")).unwrap_or_default());
        s
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.stop();
    }
}

/// faucet's configuration: every bridge with ports 1-16 untagged on one VLAN (ports that do not
/// exist yet, like a migrating VM's at its destination, are configured in advance).
fn faucet_yaml(dpids: &[u64]) -> String {
    let mut y = String::from("vlans:\n  tenant:\n    vid: 100\ndps:\n");
    for (i, dpid) in dpids.iter().enumerate() {
        y.push_str(&format!(
            "  hv{}:\n    dp_id: 0x{dpid:x}\n    hardware: \"Open vSwitch\"\n    interfaces:\n",
            i + 1
        ));
        for port in 1..=16 {
            y.push_str(&format!("      {port}:\n        native_vlan: tenant\n"));
        }
    }
    y
}

/// The flows on br-int that are not periscope's, without their counters and ages.
fn owner_flows(hv: &Hypervisor) -> BTreeSet<String> {
    let dump = hv.ofctl(&["dump-flows", "br-int"]).unwrap_or_default();
    dump.lines()
        .filter(|l| l.contains("actions=") && !l.contains(OURS))
        .map(|l| {
            l.trim()
                .split(", ")
                .filter(|p| {
                    !["duration=", "n_packets=", "n_bytes=", "idle_age=", "hard_age="]
                        .iter()
                        .any(|k| p.starts_with(k))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// The OpenFlow port numbers br-int has now.
fn ports(hv: &Hypervisor) -> BTreeSet<u32> {
    let desc = hv.ofctl(&["dump-ports-desc", "br-int"]).unwrap_or_default();
    desc.lines().filter_map(|l| l.trim().split_once('(')?.0.parse().ok()).collect()
}

/// periscope's flows on br-int.
fn our_flows(hv: &Hypervisor) -> Vec<String> {
    let dump = hv.ofctl(&["dump-flows", "br-int"]).unwrap_or_default();
    dump.lines().filter(|l| l.contains(OURS)).map(str::to_string).collect()
}

/// periscope's flows that copy traffic (fan-out 0x505303, filters 0x505302).
fn copy_flows(hv: &Hypervisor) -> usize {
    our_flows(hv)
        .iter()
        .filter(|l| l.contains("cookie=0x505302") || l.contains("cookie=0x505303"))
        .count()
}

/// Waits until every bridge holds exactly periscope's wanted flows, read back as the switch has
/// them (a match Open vSwitch wrote back otherwise would be put again and again).
fn in_sync(ctl: &ControllerProcess, hvs: &[Hypervisor]) {
    for hv in hvs {
        let path = format!("/v1/switches/{:016x}/diff", hv.dpid());
        wait_for("periscope's flows as wanted", Duration::from_secs(10), || {
            ctl.call("GET", &path, None)
                .is_ok_and(|(_, v)| v["in_sync"] == true && v["reprogramming"] == false)
        });
    }
}

/// How many packet-ins periscope received (`GET /metrics`).
fn packet_ins(ctl: &ControllerProcess) -> u64 {
    let (status, text) = ctl.call_text("GET", "/metrics").expect("metrics");
    assert_eq!(status, 200, "{text}");
    let key = "periscope_openflow_messages_total{direction=\"in\",type=\"OFPT_PACKET_IN\"} ";
    text.lines().find_map(|l| l.strip_prefix(key)?.parse().ok()).unwrap_or(0)
}

/// Pings until one round of three gets every answer (the owner learns as the first go by).
fn warm_up(from: &Vm, to: Ipv4Addr) {
    wait_for("the owner forwarding between the VMs", Duration::from_secs(20), || {
        from.ping(to, 3, Duration::from_millis(50)).is_ok_and(|r| r.received == 3)
    });
}

/// Asserts that every echo `vm` answered `peer` was copied once as delivered to it and once as
/// sent by it.
fn assert_copied_once(
    cap: &Capture,
    key: u32,
    vm: Ipv4Addr,
    peer: Ipv4Addr,
    replied: &BTreeSet<u16>,
) {
    let out = echo_seqs(cap, key, EchoKind::Reply, vm, peer);
    let inn = echo_seqs(cap, key, EchoKind::Request, peer, vm);
    let missing_out: Vec<_> = replied.difference(&out).collect();
    let missing_in: Vec<_> = replied.difference(&inn).collect();
    assert!(missing_out.is_empty(), "replies {vm} -> {peer} not copied: {missing_out:?}");
    assert!(
        missing_in.is_empty(),
        "requests {peer} -> {vm} answered but not copied: {missing_in:?}"
    );
}

fn guest_mirrors_a_migrating_vm_beside(kind: OwnerKind) {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let hvs: Vec<Hypervisor> = ["hv1", "hv2", "hv3"]
        .iter()
        .map(|n| lab.add_hypervisor(n, HypervisorOptions::secure()).expect("hypervisor"))
        .collect();
    let (hv1, hv2, hv3) = (&hvs[0], &hvs[1], &hvs[2]);
    // The tenants' overlay: a VXLAN star around hv3 (key 7), forwarded by the owner.
    for (edge, other) in [(hv1, hv3), (hv2, hv3), (hv3, hv1), (hv3, hv2)] {
        edge.add_tunnel_port(
            &format!("vx-{}", other.name()),
            TunnelKind::Vxlan,
            TunnelRemote::Ip(other.underlay_ip()),
            TunnelKey::Fixed(7),
        )
        .expect("tenant tunnel");
    }
    let tenant = |name: &str| VmOptions::new(name).external_id("tenant-id", "bank-a");
    let mut vm1 = lab.add_vm(hv1, tenant("vm1")).expect("vm1");
    let vm2 = lab.add_vm(hv2, tenant("vm2")).expect("vm2");
    let vm3 = lab.add_vm(hv3, tenant("vm3")).expect("vm3");
    let mut col = lab.add_collector("col").expect("collector");

    let dpids: Vec<u64> = hvs.iter().map(Hypervisor::dpid).collect();
    let mut owner = Owner::start(kind, lab.dir(), &dpids);
    let mut args = vec![format!("--openflow=punix:{}", sock.display()), "--mode=guest".into()];
    for hv in &hvs {
        args.push(format!("--ovsdb={}={}", hv.name(), hv.db_remote()));
    }
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("allow");
    // As a deployment would: the owner and periscope, both at once.
    for hv in &hvs {
        hv.set_controllers(&[
            ControllerTarget::HostTcp(owner.port),
            ControllerTarget::Unix(sock.clone()),
        ])
        .expect("controllers");
    }
    let svc = post(
        &ctl,
        "/v1/tap_services",
        json!({"name": "c", "tenant": "bank-a", "encap": "vxlan", "remote_ip": col.ip().to_string()}),
    );
    let key = svc["key"].as_u64().expect("key") as u32;
    let flow = post(
        &ctl,
        "/v1/tap_flows",
        json!({"name": "vm1", "tenant": "bank-a", "tap_service": svc["id"],
               "source": {"vm": vm1.vm_uuid()}, "direction": "BOTH"}),
    );
    wait_for("the copy flows and the tunnel port on hv1", Duration::from_secs(20), || {
        has_port(hv1, "psc-vx-") && copy_flows(hv1) >= 4
    });
    warm_up(&vm3, vm1.ip());
    warm_up(&vm2, vm1.ip());
    warm_up(&vm2, vm3.ip());
    // What the owner holds now, learning included: none of it may change under periscope.
    let before: Vec<BTreeSet<String>> = hvs.iter().map(owner_flows).collect();
    assert!(before.iter().all(|f| !f.is_empty()), "the owner has flows everywhere: {before:#?}");
    // Every flow of periscope's is in table 0, above every flow of the owner's.
    for hv in &hvs {
        for l in our_flows(hv) {
            assert!(l.contains(" table=0,") || !l.contains("table="), "ours outside table 0: {l}");
        }
    }

    // Every bridge holds exactly periscope's wanted flows, read back as the switch has them
    // (a match Open vSwitch writes back otherwise would be put again and again).
    in_sync(&ctl, &hvs);
    let batches = ctl.log().matches("reconciling").count();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(ctl.log().matches("reconciling").count(), batches, "nothing to put again");
    // Open vSwitch's own trace of a frame vm1 sends: periscope's flow copies it and looks table 0
    // up again, where the frame misses periscope's flows and takes the owner's.
    let port = vm1.ofport().expect("vm1's port");
    let packet = format!("in_port={port},dl_src={},dl_dst={},dl_type=0x0800", vm1.mac(), vm3.mac());
    let trace = hv1.appctl(&["ofproto/trace", "br-int", &packet]).expect("ofproto/trace");
    eprintln!("{kind:?}: {trace}");
    // The lookups of the frame itself (those of its clones are indented further).
    let lookups: Vec<&str> = trace
        .lines()
        .filter(|l| l.starts_with(' ') && l[1..].starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert!(
        lookups.len() >= 2
            && lookups[0].contains("cookie 0x5053")
            && lookups[0].contains("reg13=0,")
            && lookups[1].starts_with(" 0. ")
            && lookups[1..].iter().all(|l| !l.contains("cookie 0x5053")),
        "ours, then the owner's from table 0: {trace}"
    );
    assert!(!trace.contains("recursion") && !trace.contains("too many"), "{trace}");
    // The owner's packet-ins (output:CONTROLLER, connection id 0) go to the owner only:
    // periscope, on connection id 0x5053, got none, while the owner learnt from its own.
    let learnt = match kind {
        OwnerKind::SimpleSwitch13 => "packet in ",
        OwnerKind::Faucet => "L2 learned on",
    };
    assert!(owner.log().contains(learnt), "the owner got packet-ins: {}", owner.log());
    assert_eq!(packet_ins(&ctl), 0, "periscope got none of the owner's packet-ins");
    let run = vm3.ping_start(vm1.ip(), PINGS, Duration::from_millis(20)).expect("ping");
    let run2 = vm2.ping_start(vm1.ip(), PINGS, Duration::from_millis(20)).expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    let t = migrate_once_programmed(&mut vm1, hv2, &ctl, &flow);
    let report = run.wait().expect("ping report");
    // Its probe at the destination, when the VM's first frame there reached it, came to periscope
    // and to no one else (the same rule keeps it from the owner). Not every run sees one: faucet
    // deletes every flow of a port when the port comes up (cookie mask 0), periscope's probe
    // included, which periscope puts back; and beside simple_switch_13 the VM's gratuitous ARP
    // is all it sends there (the owner keeps forwarding to the old place), which one run in five
    // did not bring to periscope (not understood yet). The copies are checked either way.
    let log = ctl.log();
    let probed = log.contains("interface active at its new place");
    eprintln!(
        "{kind:?}: probe seen: {probed}; {}",
        log.lines()
            .filter(|l| ["removed", "active at", "held frames"].iter().any(|k| l.contains(k)))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(packet_ins(&ctl) > 0, probed, "periscope's packet-ins are its probe's");
    let report2 = run2.wait().expect("ping report");
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.capture().expect("capture");
    eprintln!(
        "{kind:?}: migration plug {:?} switch {:?} unplug {:?}; vm3->vm1 {}/{}, vm2->vm1 {}/{}; copies {:?}",
        t.plugged - t.started,
        t.switched - t.plugged,
        t.unplugged - t.switched,
        report.received,
        report.sent,
        report2.received,
        report2.sent,
        cap.count_by_key()
    );
    let replied: BTreeSet<u16> = report.replies.iter().map(|r| r.seq as u16).collect();
    let replied2: BTreeSet<u16> = report2.replies.iter().map(|r| r.seq as u16).collect();
    assert_copied_once(&cap, key, vm1.ip(), vm3.ip(), &replied);
    assert_copied_once(&cap, key, vm1.ip(), vm2.ip(), &replied2);
    assert_eq!(cap.duplicates().len(), 0, "duplicate copies: {:?}", cap.duplicates());
    assert_eq!(cap.foreign_keys(&[(Encap::Vxlan, key)]), vec![], "only the tap's key");
    // What the owner forwarded before the migration, periscope copied, both ways.
    let early = (1..=(PINGS as u16 / 5)).collect::<BTreeSet<u16>>();
    assert!(
        early.is_subset(&replied) && early.is_subset(&replied2),
        "the owner forwarded before the migration: {:?} {:?}",
        report.lost(),
        report2.lost()
    );
    if kind == OwnerKind::Faucet {
        // faucet follows a moving MAC: the owner's forwarding survived the migration.
        assert!(replied.len() as u32 >= PINGS - 10, "vm3 -> vm1 survived: {:?}", report.lost());
        assert!(replied2.len() as u32 >= PINGS - 10, "vm2 -> vm1 survived: {:?}", report2.lost());
    }
    // The owner's flows are all still there, as they were (an owner may add more as it learns).
    for (hv, before) in hvs.iter().zip(&before) {
        let after = owner_flows(hv);
        let gone: Vec<_> = before
            .iter()
            .filter(|f| !after.contains(*f))
            // Learnt flows that expire or follow the moving MAC, and flows of ports that left
            // the bridge, are the owner's business.
            .filter(|f| !f.contains("timeout=") && !f.contains(vm1.mac()))
            .filter(|f| {
                ports(hv).iter().any(|p| f.contains(&format!("in_port={p},")))
                    || !f.contains("in_port=")
            })
            .collect();
        assert!(
            gone.is_empty(),
            "{}: the owner's flows changed: {gone:#?}\nnow: {after:#?}",
            hv.name()
        );
    }
    // The VMs that did not move still reach each other through the owner.
    warm_up(&vm2, vm3.ip());

    if kind == OwnerKind::Faucet {
        // The owner wipes every flow (faucet does on every connection, cookie mask 0, ours
        // included) and installs its own again: periscope puts its own back.
        let ours_before = our_flows(hv2).len();
        let t0 = Instant::now();
        let seen = owner.log().len();
        let log_seen = ctl.log().len();
        owner.restart();
        // Faucet logs its cold start before it wipes, and our copy flows are still there
        // until the wipe lands: wait for periscope to see the wipe, then for the restore.
        let saw_wipe = || {
            ctl.log()
                .get(log_seen..)
                .is_some_and(|l| l.contains("a flow of ours was removed; restoring it"))
        };
        wait_for("faucet's cold start and its wipe, seen as FLOW_REMOVED", WIPE_WAIT, || {
            owner.log().get(seen..).is_some_and(|l| l.contains("Cold start")) && saw_wipe()
        });
        wait_for("periscope's flows back on hv2", WIPE_WAIT, || copy_flows(hv2) >= 4);
        eprintln!(
            "faucet restarted; periscope's {ours_before} flows back on hv2 after {:?}",
            t0.elapsed()
        );
        let log = ctl.log();
        let since = log.get(log_seen..).unwrap_or_default();
        in_sync(&ctl, &hvs);
        // How long each bridge took, from the first FLOW_REMOVED to the confirmed restore.
        for l in since.lines().filter(|l| l.contains("bridge reprogrammed")) {
            eprintln!("after the wipe: {l}");
        }
        warm_up(&vm1, vm3.ip());
        let after = vm1.ping(vm3.ip(), 20, Duration::from_millis(20)).expect("ping after");
        std::thread::sleep(Duration::from_millis(300));
        let cap = col.capture().expect("capture");
        let replied: BTreeSet<u16> = after.replies.iter().map(|r| r.seq as u16).collect();
        assert!(after.received >= 18, "faucet forwards again: {after:?}");
        let sent = echo_seqs(&cap, key, EchoKind::Request, vm1.ip(), vm3.ip());
        let got = echo_seqs(&cap, key, EchoKind::Reply, vm3.ip(), vm1.ip());
        assert!(replied.is_subset(&sent) && replied.is_subset(&got), "copies after the wipe");
        assert_eq!(cap.duplicates().len(), 0, "duplicate copies: {:?}", cap.duplicates());
    }
    let _ = col.stop();
}

#[test]
fn guest_beside_os_kens_simple_switch_13_mirrors_a_migrating_vm() {
    guest_mirrors_a_migrating_vm_beside(OwnerKind::SimpleSwitch13);
}

#[test]
fn guest_beside_faucet_mirrors_a_migrating_vm_and_survives_its_wipes() {
    guest_mirrors_a_migrating_vm_beside(OwnerKind::Faucet);
}
