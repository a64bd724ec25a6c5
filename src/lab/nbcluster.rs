//! A clustered (Raft) `Periscope_Northbound` database for tests and scenarios: members made
//! with `ovsdb-tool create-cluster` / `join-cluster`, each an `ovsdb-server` in its own
//! directory (the layout of the embedded database: `nb.db`, `nb.sock`, `nb.pid`), stopped by
//! the pid in its pidfile when the cluster is dropped.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cmd::Cmd;
use super::{wait_until, Result};
use crate::northbound::db::DATABASE;

/// The schema the members serve.
const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/northbound/periscope-nb.ovsschema");

/// One member.
#[derive(Debug)]
pub struct Member {
    dir: PathBuf,
}

impl Member {
    fn start(dir: PathBuf, first_raft: Option<&Path>) -> Result<Member> {
        std::fs::create_dir_all(&dir)
            .map_err(|source| super::LabError::Io { what: format!("{}", dir.display()), source })?;
        let member = Member { dir };
        let d = member.dir.display().to_string();
        let db = format!("{d}/nb.db");
        let raft = format!("unix:{}", member.raft().display());
        match first_raft {
            None => Cmd::new("ovsdb-tool").args(["create-cluster", &db, SCHEMA, &raft]).run()?,
            Some(first) => {
                let first = format!("unix:{}", first.display());
                Cmd::new("ovsdb-tool")
                    .args(["join-cluster", &db, DATABASE.name, &raft, &first])
                    .run()?
            }
        };
        Cmd::new("ovsdb-server")
            .args([
                db,
                format!("--remote=punix:{d}/nb.sock"),
                format!("--unixctl={d}/nb.ctl"),
                format!("--pidfile={d}/nb.pid"),
                format!("--log-file={d}/nb.log"),
                "--detach".into(),
            ])
            .run_detaching(&member.dir.join("nb.stderr"))?;
        Ok(member)
    }

    /// The remote a client connects to: `unix:<dir>/nb.sock`.
    pub fn remote(&self) -> String {
        format!("unix:{}", self.dir.join("nb.sock").display())
    }

    fn raft(&self) -> PathBuf {
        self.dir.join("raft.sock")
    }

    /// `ovs-appctl cluster/status`, or nothing if the member does not answer.
    fn status(&self) -> String {
        let ctl = format!("{}/nb.ctl", self.dir.display());
        Cmd::new("ovs-appctl")
            .args(["-t", &ctl, "cluster/status", DATABASE.name])
            .run()
            .unwrap_or_default()
    }

    /// Whether the member has joined its cluster.
    pub fn joined(&self) -> bool {
        self.status().contains("Status: cluster member")
    }

    /// Whether the member is the cluster's leader now.
    pub fn is_leader(&self) -> bool {
        self.status().contains("Role: leader")
    }

    /// Stops the member by the pid in its pidfile (as a crash would, it leaves its files).
    pub fn stop(&self) {
        crate::northbound::server::stop_leftover(&self.dir);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running cluster.
#[derive(Debug)]
pub struct NbCluster {
    members: Vec<Member>,
}

impl NbCluster {
    /// Starts `n` members under `dir` (`dir/m1`, `dir/m2`, ...) and waits until all joined.
    pub fn start(dir: &Path, n: usize) -> Result<NbCluster> {
        let mut members: Vec<Member> = Vec::with_capacity(n);
        for i in 1..=n {
            let first = members.first().map(Member::raft);
            members.push(Member::start(dir.join(format!("m{i}")), first.as_deref())?);
        }
        let cluster = NbCluster { members };
        wait_until("the northbound cluster to form", Duration::from_secs(20), || {
            cluster.members.iter().all(Member::joined)
        })?;
        Ok(cluster)
    }

    /// The members, in the order they were made.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Every member's remote, comma-separated, as `periscope run --nb` takes a cluster.
    pub fn remotes(&self) -> String {
        self.members.iter().map(Member::remote).collect::<Vec<_>>().join(",")
    }

    /// The index of the member that leads the cluster now, if one does.
    pub fn leader(&self) -> Option<usize> {
        self.members.iter().position(Member::is_leader)
    }
}
