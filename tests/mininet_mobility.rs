//! Real Mininet: `scenarios/mininet/mobility_tap.py` builds three userspace OVS switches with
//! Mininet's Python API, runs periscope as their RemoteController, taps a host, moves the host
//! from s1 to s3 the way Mininet's mobility example does, and checks that the copies follow it.
//! This test runs the script with the system Python and asserts on its exit status and report.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const PERISCOPE: &str = env!("CARGO_BIN_EXE_periscope");
const PYTHON: &str = "/usr/bin/python3";
/// The script stops itself after 50 s; this is the margin for its cleanup.
const TIMEOUT: Duration = Duration::from_secs(80);

/// Waits for the child until `TIMEOUT`; then SIGTERM (the script cleans up), then SIGKILL.
fn wait_or_stop(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let stop = Instant::now();
            while stop.elapsed() < Duration::from_secs(20) {
                if let Ok(Some(status)) = child.try_wait() {
                    return status;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            return child.wait().expect("waiting for the killed script");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `N requests, M replies` counts of a `... copies under vxlan key K: ...` report line.
fn copies(line: &str) -> (u32, u32) {
    let counts = line.rsplit(':').next().unwrap_or_default();
    let mut numbers = counts.split_whitespace().filter_map(|w| w.parse::<u32>().ok());
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

#[test]
fn a_tap_follows_a_host_moved_between_mininet_switches() {
    let probe = Command::new(PYTHON)
        .args(["-c", "import mininet.net, mininet.node"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON}: {e}"));
    assert!(
        probe.status.success(),
        "{PYTHON} cannot import mininet: install the Debian package `mininet` (.ci/setup does):\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/mininet/mobility_tap.py");
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .args(["--periscope", PERISCOPE])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the mininet script");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = wait_or_stop(&mut child);
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    eprintln!("{out}");
    assert!(status.success(), "the script failed ({status}):\n{out}\n{err}");

    let lines: Vec<&str> = out.lines().collect();
    let line = |start: &str| -> &str {
        lines
            .iter()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no report line starting with {start:?}:\n{out}"))
    };
    assert_eq!(lines.last(), Some(&"PASS"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    line("controller: s1, s2, s3 connected to periscope");
    line("tap: service 1 vxlan key");
    assert!(
        line("before move: periscope reports the tap flow").ends_with("ACTIVE at dpid 1 port 1"),
        "{out}"
    );
    assert!(
        line("after move: periscope reports the tap flow").ends_with("ACTIVE at dpid 3 port 10"),
        "{out}"
    );
    for phase in ["before move", "after move"] {
        let (requests, replies) = copies(line(&format!("{phase}: copies under vxlan key")));
        assert!(requests >= 9 && replies >= 9, "{phase}: too few copies:\n{out}");
    }
    line("s1: no periscope-owned port and no tap flow left");

    // Nothing of the run is left: its namespace and its directory are gone.
    let prefix = line("mininet mobility tap: prefix ")
        .trim_start_matches("mininet mobility tap: prefix ")
        .split(',')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(prefix.starts_with("pm"), "{out}");
    let netns = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&format!("{prefix}-mn")),
        "namespace {prefix}-mn left behind"
    );
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .expect("/tmp")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("periscope-mn-{prefix}-")))
        .collect();
    assert!(left.is_empty(), "run directory left behind: {left:?}");
}
