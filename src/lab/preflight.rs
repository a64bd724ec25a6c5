//! What the lab needs from the machine, checked before anything is built, so that a missing
//! package is named with the command that installs it rather than failing halfway.

/// The programs the lab runs, with the Debian package each comes from.
const NEEDED: &[(&str, &str)] = &[
    ("ovsdb-server", "openvswitch-switch"),
    ("ovs-vswitchd", "openvswitch-switch"),
    ("ovs-vsctl", "openvswitch-switch"),
    ("ovs-ofctl", "openvswitch-common"),
    ("ovs-appctl", "openvswitch-common"),
    ("ovsdb-tool", "openvswitch-common"),
    ("ip", "iproute2"),
    ("ping", "iputils-ping"),
    ("ethtool", "ethtool"),
    ("socat", "socat"),
];

/// Checks that we run as root and that every program the lab needs is installed; the error
/// says what is missing and how to install it.
pub fn check() -> Result<(), String> {
    let mut problems = Vec::new();
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        problems.push(
            "it creates network namespaces and Open vSwitch instances: run it as root".to_string(),
        );
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().map(Into::into))
        .collect();
    let mut packages: Vec<&str> = NEEDED
        .iter()
        .filter(|(prog, _)| !dirs.iter().any(|d| d.join(prog).is_file()))
        .map(|(_, pkg)| *pkg)
        .collect();
    packages.dedup();
    if !packages.is_empty() {
        problems.push(format!(
            "missing Debian packages {}: run `.ci/setup`, or `apt-get install -y {}`",
            packages.join(", "),
            packages.join(" ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}
