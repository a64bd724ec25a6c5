//! Several controllers on one clustered northbound database, on real Open vSwitch: one leader
//! (the holder of the OVSDB lock) is MASTER on every bridge, the others SLAVE; the leader is
//! killed (`kill -9`) in the middle of a live migration under traffic and another takes over,
//! claims MASTER and finishes the migration with the copies' gap at the collector under a
//! second; then a member of the database cluster (its Raft leader) is killed and the copies go
//! on, with a leader again MASTER everywhere.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use periscope::lab::controller::ControllerProcess;
use periscope::lab::nbcluster::NbCluster;
use periscope::lab::{
    Capture, ControllerTarget, EchoKind, Encap, Frame, Hypervisor, HypervisorOptions, Lab,
    MigrationStep, VmOptions,
};
use serde_json::{json, Value};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");
const NAMES: [&str; 3] = ["ctl-a", "ctl-b", "ctl-c"];

/// Every live instance's standing and the lines of its log about the election, for failures.
fn describe(ctls: &[Option<ControllerProcess>]) -> String {
    let mut out = String::new();
    for (name, c) in NAMES.iter().zip(ctls) {
        let Some(c) = c else { continue };
        out += &format!("{name}: {}\n", cluster(c));
        for l in c.log().lines().filter(|l| {
            l.contains("leader")
                || l.contains("role")
                || l.contains("lock")
                || l.contains("northbound")
        }) {
            out += &format!("  {l}\n");
        }
    }
    out
}

fn wait_for(what: &str, timeout: Duration, cond: impl FnMut() -> bool) -> Duration {
    periscope::lab::wait_until(what, timeout, cond).unwrap_or_else(|e| panic!("{e}"))
}

fn post(ctl: &ControllerProcess, path: &str, body: Value) -> Value {
    let (status, v) = ctl.call("POST", path, Some(&body)).expect("api");
    assert_eq!(status, 201, "POST {path} {body}: {v}");
    v
}

fn cluster(ctl: &ControllerProcess) -> Value {
    ctl.call("GET", "/v1/cluster", None).map(|(_, v)| v).unwrap_or(Value::Null)
}

/// The one instance that leads with MASTER confirmed on all `n` bridges while every other
/// live instance is SLAVE on all of them.
fn settled_leader(ctls: &[Option<ControllerProcess>], n: u64) -> Option<usize> {
    let views: Vec<(usize, Value)> =
        ctls.iter().enumerate().filter_map(|(i, c)| Some((i, cluster(c.as_ref()?)))).collect();
    let leaders: Vec<usize> =
        views.iter().filter(|(_, v)| v["standing"] == "leader").map(|(i, _)| *i).collect();
    let [leader] = leaders[..] else { return None };
    let settled = views.iter().all(|(i, v)| {
        let role = if *i == leader { "switches_master" } else { "switches_slave" };
        v["switches"] == n && v[role] == n
    });
    settled.then_some(leader)
}

/// The roles Open vSwitch itself reports for br-int's controllers: (controller's socket, role).
fn ovs_roles(hv: &Hypervisor) -> Vec<(String, String)> {
    let out = hv
        .vsctl(&["--format=csv", "--no-headings", "--columns=target,role", "list", "controller"])
        .unwrap_or_default();
    out.lines()
        .filter_map(|l| l.split_once(','))
        .map(|(t, r)| {
            // The lab links each controller's socket into the hypervisor's run directory.
            let t = t.trim_matches('"');
            let real = t.strip_prefix("unix:").and_then(|p| std::fs::read_link(p).ok());
            (real.map_or_else(|| t.to_string(), |p| p.display().to_string()), r.to_string())
        })
        .collect()
}

/// Copies of vm1's echo replies to vm3 (what vm1 sends), the frames the gap is measured on.
fn replies_of<'a>(
    cap: &'a Capture,
    key: u32,
    vm1: std::net::Ipv4Addr,
    vm3: std::net::Ipv4Addr,
) -> impl Fn(&Frame) -> bool + 'a {
    let _ = cap;
    move |f: &Frame| {
        f.encap == Encap::Vxlan
            && f.key == Some(key)
            && f.ip_src == Some(vm1)
            && f.ip_dst == Some(vm3)
            && f.icmp.is_some_and(|e| e.kind == EchoKind::Reply)
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

#[test]
fn a_killed_leader_is_replaced_during_a_migration_and_a_lost_db_member_changes_nothing() {
    let lab = Lab::new().expect("lab");
    let nb = NbCluster::start(&lab.dir().join("nb"), 3).expect("northbound cluster");
    let socks: Vec<_> = NAMES.iter().map(|n| lab.dir().join(format!("{n}-of.sock"))).collect();
    let opts = || {
        socks.iter().fold(HypervisorOptions::secure(), |o, s| {
            o.controller(ControllerTarget::Unix(s.clone()))
        })
    };
    let hv1 = lab.add_hypervisor("hv1", opts()).expect("hv1");
    let hv2 = lab.add_hypervisor("hv2", opts()).expect("hv2");
    let hv3 = lab.add_hypervisor("hv3", opts()).expect("hv3");
    let hvs = [&hv1, &hv2, &hv3];
    hv3.add_overlay_star(&[&hv1, &hv2], 7).expect("tenant tunnels");
    let mut vm1 =
        lab.add_vm(&hv1, VmOptions::new("vm1").external_id("tenant-id", "bank-a")).expect("vm1");
    let vm3 =
        lab.add_vm(&hv3, VmOptions::new("vm3").external_id("tenant-id", "bank-a")).expect("vm3");
    let mut col = lab.add_collector("cola").expect("collector");

    // Each instance lists the members in another order: all end up on the Raft leader.
    let members: Vec<String> = nb.members().iter().map(|m| m.remote()).collect();
    let mut ctls: Vec<Option<ControllerProcess>> = Vec::new();
    for (i, (name, sock)) in NAMES.iter().zip(&socks).enumerate() {
        let mut order = members.clone();
        order.rotate_left(i);
        let mut args = vec![
            format!("--openflow=punix:{}", sock.display()),
            format!("--nb={}", order.join(",")),
            "--leader-election".into(),
        ];
        for hv in hvs {
            args.push(format!("--ovsdb={}={}", hv.name(), hv.db_remote()));
        }
        let log = lab.dir().join(format!("{name}.log"));
        ctls.push(Some(ControllerProcess::start(PERISCOPE, &args, &log).expect(name)));
    }
    let leader = {
        let mut found = None;
        let _ = periscope::lab::wait_until(
            "one leader MASTER on every bridge, the others SLAVE",
            Duration::from_secs(20),
            || {
                found = settled_leader(&ctls, 3);
                found.is_some()
            },
        );
        found.unwrap_or_else(|| panic!("{}", describe(&ctls)))
    };
    // Open vSwitch agrees (its Controller table lags the connections by a few seconds).
    let agree = periscope::lab::wait_until(
        "ovs-vsctl to show one master and two slaves",
        Duration::from_secs(15),
        || {
            hvs.iter().all(|hv| {
                let roles = ovs_roles(hv);
                roles.iter().filter(|(_, r)| r == "master").count() == 1
                    && roles.iter().filter(|(_, r)| r == "slave").count() == 2
                    && roles.iter().any(|(t, r)| r == "master" && t.contains(NAMES[leader]))
            })
        },
    );
    let roles: Vec<_> = hvs.iter().map(|hv| ovs_roles(hv)).collect();
    assert!(agree.is_ok(), "Open vSwitch's roles: {roles:?}");

    // Writes go through a follower: the database is the only owner of the desired state.
    let follower = ctls[(leader + 1) % 3].as_ref().expect("follower");
    follower.allow("bank-a", &[&format!("{}/32", col.ip())]).expect("collectors");
    let svc = post(
        follower,
        "/v1/tap_services",
        json!({"name": "perf-a", "tenant": "bank-a", "encap": "vxlan", "remote_ip": col.ip().to_string()}),
    );
    let key = svc["key"].as_u64().expect("key") as u32;
    post(
        follower,
        "/v1/tap_flows",
        json!({"name": "vm1", "tenant": "bank-a", "tap_service": svc["id"],
               "source": {"vm": vm1.vm_uuid()}, "direction": "BOTH"}),
    );
    wait_for("copies of vm1 on hv1", Duration::from_secs(20), || {
        hv1.ofctl(&["dump-flows", "br-int"]).unwrap_or_default().contains("cookie=0x505302")
    });
    assert_eq!(vm3.ping(vm1.ip(), 3, Duration::from_millis(50)).expect("warm-up").received, 3);

    // The leader dies while vm1 is plugged at both places; another finishes the migration.
    let pings = vm3.ping_start(vm1.ip(), 250, Duration::from_millis(20)).expect("ping");
    std::thread::sleep(Duration::from_millis(800));
    let mut killed_at = (Instant::now(), 0u64);
    let mut new_leader = None;
    let mut claimed = Duration::ZERO;
    vm1.migrate_with(&hv2, |step, _| {
        if step == MigrationStep::Plugged {
            let ctl = ctls[leader].take().expect("leader");
            killed_at = (Instant::now(), now_ns());
            ctl.kill();
            claimed = wait_for("a new leader MASTER everywhere", Duration::from_secs(10), || {
                new_leader = settled_leader(&ctls, 3);
                new_leader.is_some()
            });
            let ctl = ctls[new_leader.expect("new leader")].as_ref().expect("new leader");
            wait_for(
                "the destination programmed by the new leader",
                Duration::from_secs(10),
                || {
                    let (_, flows) = ctl.call("GET", "/v1/tap_flows", None).expect("flows");
                    flows[0]["active"].as_array().is_some_and(|a| {
                        a.iter().any(|l| l["hypervisor"] == "hv2" && l["programmed"] == true)
                    })
                },
            );
        }
        Ok(())
    })
    .expect("migrate");
    let report = pings.wait().expect("ping report");
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.capture().expect("capture");
    let new_leader = new_leader.expect("new leader");
    assert_ne!(new_leader, leader);
    let copies = replies_of(&cap, key, vm1.ip(), vm3.ip());
    let gap = cap.longest_gap(&copies).expect("copies");
    let first_after =
        cap.frames.iter().filter(|f| copies(f)).map(|f| f.t_ns).find(|t| *t > killed_at.1);
    let first_after = first_after.map(|t| Duration::from_nanos(t - killed_at.1));
    let new_log = ctls[new_leader].as_ref().map(|c| c.log()).unwrap_or_default();
    eprintln!(
        "failover: leader {} killed; {} MASTER on all bridges after {claimed:?}; first copy after \
         the kill {first_after:?}; longest gap between copies {gap:?}; ping {}/{}",
        NAMES[leader], NAMES[new_leader], report.received, report.sent
    );
    eprintln!(
        "{}",
        new_log
            .lines()
            .filter(|l| l.contains("leader") || l.contains("role") || l.contains("migration"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(gap < Duration::from_secs(1), "copies stopped for {gap:?} across the failover");
    assert!(report.received + 10 >= report.sent, "the VM's own traffic: {:?}", report.lost());
    let replied: BTreeSet<u16> = report.replies.iter().map(|r| r.seq as u16).collect();
    let copied: BTreeSet<u16> =
        cap.frames.iter().filter(|f| copies(f)).filter_map(|f| f.icmp.map(|e| e.seq)).collect();
    let missing: Vec<_> = replied.difference(&copied).collect();
    assert!(missing.is_empty(), "replies of vm1 not copied: {missing:?}");
    assert_eq!(cap.duplicates().len(), 0, "duplicate copies: {:?}", cap.duplicates());
    wait_for("ovs-vsctl to show the new master", Duration::from_secs(15), || {
        hvs.iter().all(|hv| {
            ovs_roles(hv).iter().any(|(t, r)| r == "master" && t.contains(NAMES[new_leader]))
        })
    });

    // The database cluster loses its leader member: a leader again MASTER everywhere (the same
    // or another), nothing to send to the bridges, and the copies go on.
    let before = cap.frames.len();
    let pings = vm3.ping_start(vm1.ip(), 200, Duration::from_millis(20)).expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    let raft_leader = nb.leader().expect("a Raft leader");
    nb.members()[raft_leader].stop();
    std::thread::sleep(Duration::from_secs(1));
    wait_for("a leader again after the member died", Duration::from_secs(20), || {
        settled_leader(&ctls, 3).is_some()
    });
    let report = pings.wait().expect("ping report");
    std::thread::sleep(Duration::from_millis(300));
    let cap = col.stop().expect("capture");
    let later = Capture { frames: cap.frames[before..].to_vec(), ..Capture::default() };
    let copies = replies_of(&later, key, vm1.ip(), vm3.ip());
    let gap = later.longest_gap(&copies).expect("copies after the member died");
    let leader = settled_leader(&ctls, 3).expect("leader");
    eprintln!(
        "database member {} killed: leader {}, longest gap {gap:?}, ping {}/{}",
        raft_leader + 1,
        NAMES[leader],
        report.received,
        report.sent
    );
    assert!(gap < Duration::from_secs(1), "copies stopped for {gap:?} when a member died");
    let replied: BTreeSet<u16> = report.replies.iter().map(|r| r.seq as u16).collect();
    let copied: BTreeSet<u16> =
        later.frames.iter().filter(|f| copies(f)).filter_map(|f| f.icmp.map(|e| e.seq)).collect();
    assert!(replied.is_subset(&copied), "replies not copied: {:?}", replied.difference(&copied));
    for hv in [&hv1, &hv2] {
        let dpid = format!("{:016x}", hv.dpid());
        let path = format!("/v1/switches/{dpid}/diff");
        let ctl = ctls[leader].as_ref().expect("leader");
        wait_for("the bridge in sync with the leader", Duration::from_secs(10), || {
            ctl.call("GET", &path, None).is_ok_and(|(_, d)| d["in_sync"] == true)
        });
    }
}
