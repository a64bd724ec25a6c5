//! `periscope run` drives real Open vSwitch bridges: a `fail_mode=secure` bridge forwards only
//! once the controller has installed its pipeline, the flows carry periscope's cookie, flows it
//! did not install survive, a restarted controller sends nothing when nothing changed, and a
//! peer that does not speak OpenFlow 1.3 is refused.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{ControllerTarget, Hypervisor, HypervisorOptions, Lab, VmOptions};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

fn flows(hv: &Hypervisor) -> String {
    hv.ofctl(&["dump-flows", "br-int"]).expect("dump-flows")
}

/// Waits until `cond` holds, or fails the test with `what`.
fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

fn ours(dump: &str) -> Vec<&str> {
    dump.lines().filter(|l| l.contains("cookie=0x5053")).collect()
}

#[test]
fn secure_bridge_forwards_only_under_the_controller_and_keeps_foreign_flows() {
    let lab = Lab::new().expect("lab");
    let sock = lab.dir().join("of.sock");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::Unix(sock.clone())),
        )
        .expect("hypervisor");
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");

    // No controller yet: a secure bridge has no flows and forwards nothing.
    let before = vm1.ping(vm2.ip(), 2, Duration::from_millis(100)).expect("ping");
    assert_eq!(before.received, 0, "a secure bridge without flows must not forward");
    // Someone else's flow, which periscope must never touch.
    hv.ofctl(&["add-flow", "br-int", "cookie=0x1234,table=7,priority=5,udp,tp_dst=9,actions=drop"])
        .expect("foreign flow");

    let log = lab.dir().join("controller.log");
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &[format!("--openflow=punix:{}", sock.display())],
        &log,
    )
    .expect("controller");
    // The whole base pipeline (three tables passing to NORMAL) is in place...
    wait_for("the controller's flows", Duration::from_secs(15), || ours(&flows(&hv)).len() >= 3);
    // ...and after ARP, which failed while nothing forwarded, has resolved, nothing is lost.
    vm1.ping(vm2.ip(), 2, Duration::from_millis(300)).expect("warm-up ping");
    let after = vm1.ping(vm2.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!(after.received, 5, "forwarding through the controller's pipeline");

    let dump = flows(&hv);
    assert!(
        dump.contains("cookie=0x1234") && dump.contains("tp_dst=9"),
        "foreign flow gone:\n{dump}"
    );
    assert!(ours(&dump).iter().any(|l| l.contains("actions=NORMAL")), "no NORMAL flow:\n{dump}");
    let (status, switches) = ctl.call("GET", "/v1/switches", None).expect("api");
    assert_eq!(status, 200);
    assert_eq!(switches[0]["dpid"], format!("{:016x}", hv.dpid()), "{switches}");

    // A restart that finds the flows it wants sends no flow mod, and keeps forwarding meanwhile.
    let n_before = ours(&dump).len();
    ctl.stop();
    let during = vm1.ping(vm2.ip(), 3, Duration::from_millis(50)).expect("ping");
    assert_eq!(during.received, 3, "fail_mode=secure keeps flows while the controller is away");
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &[format!("--openflow=punix:{}", sock.display())],
        &log,
    )
    .expect("controller restart");
    wait_for("the switch to reconnect", Duration::from_secs(20), || {
        ctl.call("GET", "/v1/switches", None)
            .map(|(_, s)| s[0]["our_flows"].is_number())
            .unwrap_or(false)
    });
    let log = ctl.log();
    assert!(!log.contains("reconciling"), "flow mods sent though nothing changed:\n{log}");
    assert_eq!(ours(&flows(&hv)).len(), n_before);
}

#[test]
fn tcp_listener_on_an_ephemeral_port_drives_a_bridge() {
    // Find a free port, then let the controller bind it (the lab relays the hypervisor's
    // 127.0.0.1:port to ours).
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let lab = Lab::new().expect("lab");
    let log = lab.dir().join("controller.log");
    let ctl =
        ControllerProcess::start(PERISCOPE, &[format!("--openflow=ptcp:{port}:127.0.0.1")], &log)
            .expect("controller");
    let hv = lab
        .add_hypervisor(
            "hv1",
            HypervisorOptions::secure().controller(ControllerTarget::HostTcp(port)),
        )
        .expect("hypervisor");
    wait_for("the controller's flows", Duration::from_secs(20), || ours(&flows(&hv)).len() >= 3);
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2")).expect("vm2");
    vm1.ping(vm2.ip(), 1, Duration::from_millis(50)).expect("warm-up ping");
    assert_eq!(vm1.ping(vm2.ip(), 3, Duration::from_millis(50)).expect("ping").received, 3);
    assert!(ctl.log().contains("switch ready"));
}

#[test]
fn a_peer_without_openflow_1_3_gets_hello_failed_and_is_closed() {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let dir = std::env::temp_dir().join(format!("periscope-hello-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &[format!("--openflow=ptcp:{port}:127.0.0.1")],
        &dir.join("log"),
    )
    .expect("controller");
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    // An OpenFlow 1.0 HELLO without a version bitmap.
    s.write_all(&[0x01, 0, 0, 8, 0, 0, 0, 9]).expect("hello");
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("read until the controller closes");
    // Our HELLO (version 4, with a bitmap), then an ERROR in version 1: HELLO_FAILED/INCOMPATIBLE.
    let hello_len = u16::from_be_bytes([got[2], got[3]]) as usize;
    assert_eq!((got[0], got[1]), (4, 0), "{got:02x?}");
    let err = &got[hello_len..];
    assert_eq!((err[0], err[1]), (1, 1), "an OFPT_ERROR in the peer's version: {got:02x?}");
    assert_eq!(&err[8..12], &[0, 0, 0, 0], "OFPET_HELLO_FAILED / OFPHFC_INCOMPATIBLE");
    drop(ctl);
    let _ = std::fs::remove_dir_all(&dir);
}
