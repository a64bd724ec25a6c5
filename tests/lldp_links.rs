//! Links OVSDB cannot see are found with LLDP: a veth between `br-int` and a second bridge of
//! the same hypervisor shows up in `GET /v1/topology` within seconds, is gone soon after the
//! veth is deleted, and no VM ever receives a probe while VMs still reach each other.

use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::{ControllerTarget, HypervisorOptions, Lab, VmOptions};
use serde_json::Value;

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

/// Waits until `cond` holds, or fails the test with `what`.
fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) -> Duration {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"))
}

/// The LLDP links the controller shows, as sorted ((dpid, port), (dpid, port)) pairs.
fn lldp_links(ctl: &ControllerProcess) -> Vec<((String, u64), (String, u64))> {
    let Ok((200, topo)) = ctl.call("GET", "/v1/topology", None) else { return Vec::new() };
    let end = |v: &Value| {
        (format!("{:016x}", v["dpid"].as_u64().unwrap_or(0)), v["port"].as_u64().unwrap_or(0))
    };
    let mut links: Vec<_> = topo["links"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["kind"] == "lldp")
        .map(|l| {
            let (a, b) = (end(&l["a"]), end(&l["b"]));
            if a <= b {
                (a, b)
            } else {
                (b, a)
            }
        })
        .collect();
    links.sort();
    links
}

#[test]
fn veth_between_bridges_is_discovered_and_forgotten_and_vms_never_see_probes() {
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

    // A second bridge under the same controller, cabled to br-int by a veth OVSDB knows only as
    // two unrelated system ports.
    let target = hv.vsctl(&["get-controller", "br-int"]).expect("br-int's controller");
    let target = target.trim();
    let brx_dpid = (hv.dpid() & !0xff) | 0x09;
    hv.vsctl(&[
        "add-br",
        "brx",
        "--",
        "set",
        "bridge",
        "brx",
        "datapath_type=netdev",
        "fail_mode=secure",
        "protocols=OpenFlow13",
        &format!("other-config:datapath-id={brx_dpid:016x}"),
        "other-config:disable-in-band=true",
        "--",
        "set-controller",
        "brx",
        target,
    ])
    .expect("brx");
    hv.ip(&["link", "add", "lk-int", "type", "veth", "peer", "name", "lk-x"]).expect("veth");
    hv.ip(&["link", "set", "lk-int", "up"]).expect("veth up");
    hv.ip(&["link", "set", "lk-x", "up"]).expect("veth up");
    hv.vsctl(&["add-port", "br-int", "lk-int", "--", "add-port", "brx", "lk-x"]).expect("ports");
    let int_port = hv.ofport("lk-int").expect("lk-int ofport");
    let x_port = u64::from(
        hv.vsctl(&["get", "Interface", "lk-x", "ofport"])
            .expect("lk-x ofport")
            .trim()
            .parse::<u32>()
            .expect("ofport number"),
    );

    let log = lab.dir().join("controller.log");
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &[
            format!("--openflow=punix:{}", sock.display()),
            format!("--ovsdb=hv1={}", hv.db_remote()),
        ],
        &log,
    )
    .expect("controller");

    let int = (format!("{:016x}", hv.dpid()), u64::from(int_port));
    let x = (format!("{brx_dpid:016x}"), x_port);
    let want =
        if int <= x { vec![(int.clone(), x.clone())] } else { vec![(x.clone(), int.clone())] };

    // Watch for probes at a VM for the whole time links are discovered and probed.
    let watch = {
        let vm = vm1.netns().to_string();
        std::thread::spawn(move || {
            std::process::Command::new("ip")
                .args(["netns", "exec", &vm, "timeout", "6", "tcpdump", "-n", "-c1", "-i", "eth0"])
                .args(["ether", "proto", "0x88cc"])
                .output()
        })
    };

    let found = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        lldp_links(&ctl) == want
    });
    if !found {
        let topo = ctl.call("GET", "/v1/topology", None).map(|(_, t)| t);
        panic!(
            "no LLDP link {want:?} after 20 s\nlinks: {:?}\nswitches: {:?}\nlog:\n{}",
            topo.as_ref().map(|t| t["links"].clone()),
            topo.as_ref().map(|t| t["switches"].clone()),
            ctl.log()
        );
    }
    // Stays up while probes keep it fresh.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lldp_links(&ctl), want, "link flapped:\n{}", ctl.log());

    // VMs still reach each other through br-int.
    vm1.ping(vm2.ip(), 2, Duration::from_millis(200)).expect("warm-up ping");
    let ping = vm1.ping(vm2.ip(), 5, Duration::from_millis(50)).expect("ping");
    assert_eq!(ping.received, 5, "ping between VMs");

    let seen = watch.join().expect("tcpdump thread").expect("tcpdump");
    let out = String::from_utf8_lossy(&seen.stdout);
    assert!(
        !seen.status.success() && !out.contains("LLDP"),
        "a VM received an LLDP frame:\n{out}\n{}",
        String::from_utf8_lossy(&seen.stderr)
    );
    assert!(
        String::from_utf8_lossy(&seen.stderr).contains("listening"),
        "tcpdump did not run: {}",
        String::from_utf8_lossy(&seen.stderr)
    );

    // Cut the cable: the link goes (expiry or port removal, whichever comes first).
    hv.ip(&["link", "del", "lk-int"]).expect("delete veth");
    let took = wait_for("the link to go", Duration::from_secs(3), || lldp_links(&ctl).is_empty());
    assert!(took < Duration::from_millis(2500), "link went after {took:?}");
    assert!(ctl.log().contains("link down"), "no link down logged:\n{}", ctl.log());
    drop(ctl);
}
