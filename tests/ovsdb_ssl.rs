//! `ssl:` and `pssl:` remotes against a real ovsdb-server, with certificates made by
//! `ovs-pki`: the controller's certificate is signed by the PKI's `controllerca`, the server's
//! by its `switchca`, and each side trusts the other's CA.

mod ovsdb_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ovsdb_support::{Client, TempDir};
use periscope::lab::pki::{Identity, Pki};
use periscope::ovsdb::driver::DriverConfig;
use periscope::ovsdb::SessionEvent;
use periscope::tls::{TlsConfig, TlsFiles};

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).current_dir(dir).output().expect(program);
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An `ovs-pki` PKI with the server's (switch) and the controller's identities.
struct Ids {
    server: Identity,
    controller: TlsFiles,
}

fn pki(dir: &Path) -> Ids {
    let pki = Pki::new(dir).expect("ovs-pki");
    let server = pki.switch("server").expect("server identity");
    let controller = pki.controller("client").expect("controller identity").into();
    Ids { server, controller }
}

/// An ovsdb-server of our own with a fresh Open_vSwitch database, serving `punix:` (for
/// ovs-vsctl) and `pssl:0:127.0.0.1` with the PKI's switch identity. Stopped by pid on drop.
struct SslServer {
    dir: PathBuf,
    port: u16,
}

impl SslServer {
    fn start(dir: &Path, id: &Identity) -> SslServer {
        let d = dir.display().to_string();
        run(
            dir,
            "ovsdb-tool",
            &["create", &format!("{d}/conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"],
        );
        let arg = |flag: &str, path: &Path| format!("--{flag}={}", path.display());
        run(
            dir,
            "ovsdb-server",
            &[
                &format!("{d}/conf.db"),
                &format!("--remote=punix:{d}/db.sock"),
                "--remote=pssl:0:127.0.0.1",
                &arg("private-key", &id.private_key),
                &arg("certificate", &id.certificate),
                &arg("ca-cert", &id.ca_cert),
                &format!("--unixctl={d}/ovsdb.ctl"),
                &format!("--pidfile={d}/ovsdb.pid"),
                &format!("--log-file={d}/ovsdb.log"),
                "--detach",
            ],
        );
        let mut s = SslServer { dir: dir.into(), port: 0 };
        s.port = s.bound_port();
        s.vsctl(&["init"]);
        s
    }

    /// The port ovsdb-server bound for `pssl:0`, from its log ("listening on port N").
    fn bound_port(&self) -> u16 {
        let start = Instant::now();
        loop {
            let log = std::fs::read_to_string(self.dir.join("ovsdb.log")).unwrap_or_default();
            let port = log.lines().find_map(|l| {
                l.split_once("listening on port ").and_then(|(_, p)| p.trim().parse().ok())
            });
            if let Some(p) = port {
                return p;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no bound port in log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn remote(&self) -> String {
        format!("ssl:127.0.0.1:{}", self.port)
    }

    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}/db.sock", self.dir.display());
        let mut all = vec![db.as_str(), "--no-wait", "--timeout=10"];
        all.extend_from_slice(args);
        run(&self.dir, "ovs-vsctl", &all)
    }

    fn appctl(&self, args: &[&str]) -> String {
        let ctl = format!("{}/ovsdb.ctl", self.dir.display());
        let mut all = vec!["-t", ctl.as_str()];
        all.extend_from_slice(args);
        run(&self.dir, "ovs-appctl", &all)
    }
}

impl Drop for SslServer {
    fn drop(&mut self) {
        let pidfile = self.dir.join("ovsdb.pid");
        let Some(pid) =
            std::fs::read_to_string(pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok())
        else {
            return;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end() == "ovsdb-server" {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
            for _ in 0..100 {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn client(files: &TlsFiles) -> Client {
    let tls = TlsConfig::load(files).unwrap_or_else(|e| panic!("loading {files:?}: {e}"));
    Client::with(DriverConfig {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        tls: Some(tls),
        ..DriverConfig::default()
    })
}

#[test]
fn ssl_remote_reaches_the_monitor_and_sees_the_open_vswitch_row() {
    let tmp = TempDir::new("ssl");
    let ids = pki(&tmp.0.join("ca"));
    std::fs::create_dir(tmp.0.join("db")).expect("db dir");
    let server = SslServer::start(&tmp.0.join("db"), &ids.server);
    server.vsctl(&["set", "Open_vSwitch", ".", "external_ids:hostname=ssl-node"]);

    let mut c = client(&ids.controller);
    c.add("hv-ssl", &server.remote());
    let hostname = c.wait_for("the Open_vSwitch row over ssl:", Duration::from_secs(20), |st| {
        st.topology.hypervisor(&"hv-ssl".into()).and_then(|h| h.hostname.clone())
    });
    assert_eq!(hostname, "ssl-node");
    let st = c.state();
    assert_eq!(st.connections("hv-ssl"), 1);
    assert!(st.of("hv-ssl").any(|e| matches!(e, SessionEvent::Snapshot(_))));
    assert!(st.connect_failures.is_empty(), "{:?}", st.connect_failures);
}

#[test]
fn a_server_certificate_from_another_ca_is_refused_with_a_clear_error() {
    let tmp = TempDir::new("ssl-wrong-ca");
    let ids = pki(&tmp.0.join("ca"));
    let other = Pki::new(&tmp.0.join("other-ca")).expect("ovs-pki");
    std::fs::create_dir(tmp.0.join("db")).expect("db dir");
    let server = SslServer::start(&tmp.0.join("db"), &ids.server);

    // Our own identity is fine for the server; only the CA we check it against is wrong.
    let files = TlsFiles { ca_cert: other.switch_ca(), ..ids.controller };
    let mut c = client(&files);
    c.add("hv-wrong-ca", &server.remote());
    let error = c.wait_for("a refused connection", Duration::from_secs(20), |st| {
        st.connect_failures.first().map(|(_, e)| e.clone())
    });
    assert!(error.contains(&format!("TLS handshake with {} failed", server.remote())), "{error}");
    assert!(error.contains("not signed by the CA of --ca-cert"), "{error}");
    // It keeps retrying, and never gets through.
    c.wait_for("a second attempt", Duration::from_secs(20), |st| {
        (st.connect_failures.len() >= 2).then_some(())
    });
    assert_eq!(c.state().connections("hv-wrong-ca"), 0);
    assert!(c.handles.iter().all(|h| !h.task.is_finished()), "the driver is still running");
}

#[test]
fn pssl_listener_serves_an_ovsdb_server_connecting_over_ssl() {
    let tmp = TempDir::new("pssl");
    let ids = pki(&tmp.0.join("ca"));
    std::fs::create_dir(tmp.0.join("db")).expect("db dir");
    let server = SslServer::start(&tmp.0.join("db"), &ids.server);
    server.vsctl(&["set", "Open_vSwitch", ".", "external_ids:system-id=sys-ssl"]);

    let c = client(&ids.controller);
    let local = c.listen("pssl:0:127.0.0.1");
    assert!(local.starts_with("ssl:127.0.0.1:"), "{local}");
    server.appctl(&["ovsdb-server/add-remote", &local]);
    c.wait_for("sys-ssl connected over pssl:", Duration::from_secs(20), |st| {
        (st.connections("sys-ssl") > 0).then_some(())
    });
    let st = c.state();
    assert!(st.topology.hypervisor(&"sys-ssl".into()).is_some());
    assert_eq!(st.accepted.iter().map(|(h, _)| h.as_str()).collect::<Vec<_>>(), ["sys-ssl"]);
}
