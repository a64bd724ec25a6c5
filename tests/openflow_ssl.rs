//! OpenFlow over TLS against real Open vSwitch, with certificates made by `ovs-pki`: a bridge
//! told `set-controller br-int ssl:...` reaches `periscope run --openflow pssl:...` and its
//! VM's traffic is copied; a switch whose certificate another CA signed is refused and the log
//! says why; and a new certificate (from a new CA) is taken up by new connections without a
//! restart while the established ones stay.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use periscope::lab::controller::ControllerProcess;
use periscope::lab::pki::{Identity, Pki};
use periscope::lab::{
    ControllerTarget, EchoKind, Encap, Hypervisor, HypervisorOptions, Lab, VmOptions,
};
use periscope::scenario::http::{request_to, Endpoint};
use periscope::tls::ApiClientTls;
use serde_json::{json, Value};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");

fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"));
}

/// A port nobody listens on now, for the controller's `pssl:` (the lab's relays need it
/// before the controller starts).
fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    l.local_addr().expect("addr").port()
}

/// The controller's arguments for its identity (`--api-tls` when asked).
fn tls_args(id: &Identity, port: u16, api_tls: bool) -> Vec<String> {
    let mut a = vec![
        format!("--openflow=pssl:{port}:127.0.0.1"),
        format!("--private-key={}", id.private_key.display()),
        format!("--certificate={}", id.certificate.display()),
        format!("--ca-cert={}", id.ca_cert.display()),
    ];
    if api_tls {
        a.push("--api-tls".into());
    }
    a
}

/// A hypervisor whose `br-int` connects over `ssl:` to `port`, with the switch identity `id`.
fn ssl_hypervisor(lab: &Lab, name: &str, port: u16, id: &Identity) -> Hypervisor {
    let target = ControllerTarget::HostSsl(port);
    let hv = lab.add_hypervisor(name, HypervisorOptions::secure().controller(target)).expect(name);
    hv.set_ssl(&id.private_key, &id.certificate, &id.ca_cert).expect("set-ssl");
    hv
}

/// The `peer` of every connected switch, by datapath id.
fn switches(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .map(|l| {
            l.iter()
                .map(|s| {
                    (
                        s["dpid"].as_str().unwrap_or("").into(),
                        s["peer"].as_str().unwrap_or("").into(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_bridge_on_ssl_gets_its_copies_and_a_switch_of_another_ca_is_refused() {
    let lab = Lab::new().expect("lab");
    let pki = Pki::new(&lab.dir().join("pki")).expect("pki");
    let rogue = Pki::new(&lab.dir().join("rogue-pki")).expect("rogue pki");
    let port = free_port();
    let hv = ssl_hypervisor(&lab, "hv1", port, &pki.switch("switch").expect("switch"));
    let vm1 = lab.add_vm(&hv, VmOptions::new("vm1").external_id("tenant-id", "bank")).expect("vm1");
    let vm2 = lab.add_vm(&hv, VmOptions::new("vm2").external_id("tenant-id", "bank")).expect("vm2");
    let mut col = lab.add_collector("col").expect("collector");
    let mut args = tls_args(&pki.controller("controller").expect("controller"), port, false);
    args.push(format!("--ovsdb=hv1={}", hv.db_remote()));
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    ctl.allow("bank", &[&format!("{}/32", col.ip())]).expect("bank's collectors");
    let dpid = format!("{:016x}", hv.dpid());
    wait_for("hv1 connected over ssl", Duration::from_secs(20), || {
        let (_, list) = ctl.call("GET", "/v1/switches", None).expect("switches");
        switches(&list).iter().any(|(d, p)| *d == dpid && p.starts_with("ssl:"))
    });

    let (status, svc) = ctl
        .call(
            "POST",
            "/v1/tap_services",
            Some(&json!({"name": "s", "tenant": "bank", "encap": "vxlan",
                "remote_ip": col.ip().to_string(), "key": 77})),
        )
        .expect("api");
    assert_eq!(status, 201, "{svc}");
    let flow = json!({"name": "f", "tenant": "bank", "tap_service": svc["id"],
        "source": {"iface_id": vm1.iface_id()}, "direction": "BOTH"});
    let (status, reply) = ctl.call("POST", "/v1/tap_flows", Some(&flow)).expect("api");
    assert_eq!(status, 201, "{reply}");
    wait_for("the copy flows on hv1", Duration::from_secs(20), || {
        let dump = hv.ofctl(&["dump-flows", "br-int"]).unwrap_or_default();
        dump.lines().filter(|l| l.contains("cookie=0x5053") && l.contains("tun_dst")).count() >= 2
    });
    assert_eq!(vm1.ping(vm2.ip(), 5, Duration::from_millis(50)).expect("ping").received, 5);

    // A switch with a certificate signed by another PKI's switch CA; it trusts our controller.
    let stranger =
        Identity { ca_cert: pki.controller_ca(), ..rogue.switch("stranger").expect("id") };
    let hv2 = ssl_hypervisor(&lab, "hv2", port, &stranger);
    wait_for("the stranger refused in the log", Duration::from_secs(20), || {
        ctl.log().lines().any(|l| {
            l.contains("switch refused") && l.contains("not signed by the CA of --ca-cert")
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop().expect("capture");
    let seqs = cap.echo_seqs(Encap::Vxlan, 77, EchoKind::Request, vm1.ip());
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "vm1's echoes copied: {:?}", cap.count_by_key());
    assert_eq!(cap.foreign_keys(&[(Encap::Vxlan, 77)]), vec![]);
    let (_, list) = ctl.call("GET", "/v1/switches", None).expect("switches");
    let stranger_dpid = format!("{:016x}", hv2.dpid());
    assert!(
        switches(&list).iter().all(|(d, _)| *d != stranger_dpid),
        "the stranger is not a switch of ours: {list}"
    );
}

/// Replaces `to` with `from` in one rename, as a deployment tool would.
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

#[test]
fn a_certificate_from_a_new_ca_is_used_by_new_connections_without_a_restart() {
    let lab = Lab::new().expect("lab");
    let old = Pki::new(&lab.dir().join("old-pki")).expect("old pki");
    let new = Pki::new(&lab.dir().join("new-pki")).expect("new pki");
    let issued = old.controller("controller").expect("controller");
    // The controller's files live where the operator replaces them.
    let live = lab.dir().join("live");
    std::fs::create_dir(&live).expect("live dir");
    let id = Identity {
        private_key: live.join("key.pem"),
        certificate: live.join("cert.pem"),
        ca_cert: live.join("ca.pem"),
    };
    replace(&issued.private_key, &id.private_key);
    replace(&issued.certificate, &id.certificate);
    replace(&issued.ca_cert, &id.ca_cert);
    let port = free_port();
    let hv = ssl_hypervisor(&lab, "hv1", port, &old.switch("switch").expect("switch"));
    let ctl = ControllerProcess::start(
        PERISCOPE,
        &tls_args(&id, port, true),
        &lab.dir().join("controller.log"),
    )
    .expect("controller");
    let token = ctl.token().map(str::to_string);
    let addr: SocketAddr = ctl.api();
    let api = |ca: &Path| {
        let tls = ApiClientTls::load(ca).expect("CA");
        let token = token.clone();
        move |path: &str| {
            request_to(&Endpoint::Https(addr, tls.clone()), token.as_deref(), "GET", path, None)
        }
    };
    let with_old_ca = api(&old.controller_ca());
    let with_new_ca = api(&new.controller_ca());
    let dpid = format!("{:016x}", hv.dpid());
    let mut before = String::new();
    wait_for("hv1 connected over ssl", Duration::from_secs(20), || {
        let Ok((200, list)) = with_old_ca("/v1/switches") else { return false };
        let peer = switches(&list).into_iter().find(|(d, _)| *d == dpid).map(|(_, p)| p);
        before = peer.unwrap_or_default();
        !before.is_empty()
    });
    let e = with_new_ca("/v1/switches").expect_err("the new CA did not sign the certificate yet");
    assert!(e.to_string().contains("TLS handshake"), "{e}");

    // A certificate written halfway is not taken: the previous files stay in use.
    std::fs::write(&id.certificate, "-----BEGIN CERTIFICATE-----\nMIIB\n").expect("truncate");
    let (status, _) = with_old_ca("/v1/switches").expect("the previous certificate still served");
    assert_eq!(status, 200);
    wait_for("the refusal of the broken files logged", Duration::from_secs(5), || {
        ctl.log().contains("TLS files changed but cannot be used: keeping the previous ones")
    });

    // The operator replaces the key and the certificate with ones the new CA signed.
    let reissued = new.controller("controller").expect("new controller identity");
    replace(&reissued.private_key, &id.private_key);
    replace(&reissued.certificate, &id.certificate);

    let e = with_old_ca("/v1/switches").expect_err("the old CA no longer vouches for the server");
    assert!(e.to_string().contains("not signed by the CA"), "{e}");
    let (status, list) = with_new_ca("/v1/switches").expect("HTTPS with the new CA");
    assert_eq!(status, 200, "{list}");
    // The switch's established connection stayed: the same peer, still there.
    let peers = switches(&list);
    assert!(peers.contains(&(dpid.clone(), before.clone())), "{before} gone: {list}");
    assert!(ctl.log().contains("TLS files changed: new connections use them"), "{}", ctl.log());

    // The shell talks HTTPS too.
    let out = std::process::Command::new(PERISCOPE)
        .args(["shell", "--api", &format!("https://{addr}"), "--ca-cert"])
        .arg(new.controller_ca())
        .args(["--token", token.as_deref().unwrap_or_default(), "-c", "show switches"])
        .output()
        .expect("periscope shell");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}{}", String::from_utf8_lossy(&out.stderr));
    assert!(shown.contains(&before), "{shown}");

    // A new switch that trusts only the new CA connects over OpenFlow.
    let newcomer = Identity { ca_cert: new.controller_ca(), ..old.switch("newcomer").expect("id") };
    let hv2 = ssl_hypervisor(&lab, "hv2", port, &newcomer);
    let dpid2 = format!("{:016x}", hv2.dpid());
    wait_for("hv2 connected with the new certificate", Duration::from_secs(20), || {
        with_new_ca("/v1/switches").is_ok_and(|(_, l)| {
            switches(&l).iter().any(|(d, p)| *d == dpid2 && p.starts_with("ssl:"))
        })
    });
}

#[test]
fn the_controller_connects_to_a_bridge_listening_on_pssl_and_reads_its_flows() {
    let lab = Lab::new().expect("lab");
    let pki = Pki::new(&lab.dir().join("pki")).expect("pki");
    let listening = ControllerTarget::Raw("pssl:6653:127.0.0.1".into());
    let hv =
        lab.add_hypervisor("hv1", HypervisorOptions::secure().controller(listening)).expect("hv1");
    let id = pki.switch("switch").expect("switch");
    hv.set_ssl(&id.private_key, &id.certificate, &id.ca_cert).expect("set-ssl");
    let switch = hv.relay_from_host(6653).expect("relay to the bridge's pssl:");
    let controller = pki.controller("controller").expect("controller");
    let mut args = tls_args(&controller, 0, false);
    args[0] = format!("--openflow=ssl:{switch}");
    args.push(format!("--ovsdb=hv1={}", hv.db_remote()));
    let ctl = ControllerProcess::start(PERISCOPE, &args, &lab.dir().join("controller.log"))
        .expect("controller");
    let dpid = format!("{:016x}", hv.dpid());
    let peer = format!("ssl:{switch}");
    wait_for("the controller connected to hv1", Duration::from_secs(20), || {
        let (_, list) = ctl.call("GET", "/v1/switches", None).expect("switches");
        switches(&list).contains(&(dpid.clone(), peer.clone()))
    });
    // The session works: the flows the switch holds, read from it now over that connection.
    hv.ofctl(&["add-flow", "br-int", "priority=7,dl_type=0x88cc,actions=drop"]).expect("add-flow");
    let (status, flows) =
        ctl.call("GET", &format!("/v1/switches/{dpid}/flows"), None).expect("flows");
    assert_eq!(status, 200, "{flows}");
    assert!(flows.to_string().contains("priority=7"), "{flows}");
}
