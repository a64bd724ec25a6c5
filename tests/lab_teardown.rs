//! Dropping a lab, also while unwinding from a panic, leaves nothing behind with its prefix.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Command;

use periscope::lab::{ControllerTarget, HypervisorOptions, Lab, VmOptions};

fn netns_list() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pids of live processes whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(text) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; it counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').map(|(_, r)| !r.trim_start().starts_with('Z')).unwrap_or(true))
        .unwrap_or(false)
}

#[test]
fn a_panicking_test_still_removes_everything_its_lab_created() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let collector = PathBuf::from(env!("CARGO_BIN_EXE_periscope-lab-collector"));
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let lab = Lab::new().expect("lab");
        lab.set_collector_command(collector, Vec::new());
        let options = HypervisorOptions::secure().controller(ControllerTarget::HostTcp(port));
        let hv = lab.add_hypervisor("hv1", options).expect("hypervisor");
        hv.add_db_tcp_remote().expect("tcp remote");
        lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm");
        let col = lab.add_collector("col1").expect("collector");
        let pids = lab.pids();
        let netns = lab.netns();
        // ovsdb-server, ovs-vswitchd, 4 relays, the collector.
        assert_eq!(pids.len(), 7, "{pids:?}");
        assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
        assert!(col.pid().is_some());
        let mentioning = processes_mentioning(&format!("periscope-lab-{}", lab.prefix()));
        assert!(mentioning.len() >= 7, "the check below can see our processes: {mentioning:?}");
        assert_eq!(netns.len(), 4, "fabric, hv1, vm1, col1: {netns:?}");
        tx.send((lab.prefix().to_string(), lab.dir().to_path_buf(), pids)).expect("send");
        panic!("the test fails after building its lab");
    });
    assert!(outcome.is_err());
    let (prefix, dir, pids) = rx.recv().expect("what the lab created");

    let left = netns_list();
    assert!(!left.lines().any(|l| l.starts_with(&prefix)), "namespaces left:\n{left}");
    let alive_pids: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(alive_pids.is_empty(), "processes left: {alive_pids:?}");
    // Relays fork per connection; those children must be gone too.
    let mentioning = processes_mentioning(&format!("periscope-lab-{prefix}"));
    assert!(mentioning.is_empty(), "processes naming the lab dir left: {mentioning:?}");
    assert!(!dir.exists(), "{} left", dir.display());
    let tmp = std::fs::read_dir(dir.parent().expect("parent")).expect("temp dir");
    assert!(
        !tmp.flatten().any(|e| e.file_name().to_string_lossy().contains(&prefix)),
        "a file with the prefix {prefix} is left in the temp dir"
    );
}

#[test]
fn dropping_a_lab_removes_its_namespaces_processes_and_directory() {
    let lab = Lab::new().expect("lab");
    let hv = lab.add_hypervisor("hv1", HypervisorOptions::standalone()).expect("hypervisor");
    lab.add_vm(&hv, VmOptions::new("vm1")).expect("vm");
    let (prefix, dir, pids) = (lab.prefix().to_string(), lab.dir().to_path_buf(), lab.pids());
    assert_eq!(pids.len(), 2, "ovsdb-server and ovs-vswitchd: {pids:?}");
    drop(lab);
    assert!(!netns_list().lines().any(|l| l.starts_with(&prefix)));
    assert!(pids.iter().all(|p| !alive(*p)), "{pids:?}");
    assert!(!dir.exists());
    assert!(hv.vsctl(&["show"]).is_err(), "the hypervisor is gone with its lab");
}
