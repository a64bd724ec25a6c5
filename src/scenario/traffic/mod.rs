//! Background pings between VMs: `ping -D -e <id>` in the sender's namespace, so that every echo
//! carries an identifier unique to its run (collectors tell runs apart by it) and every reply a
//! timestamp (the VM's own longest silence, against which the copies' silence is judged).
//! UDP streams and TCP transfers are in [`stream`].

pub mod stream;

use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::lab::PingReport;

/// What a finished ping saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PingOutcome {
    /// The `start_ping` step's name.
    pub name: String,
    /// Sending VM.
    pub from: String,
    /// Target VM.
    pub to: String,
    /// The sender's address.
    pub from_ip: Option<Ipv4Addr>,
    /// The target's address.
    pub to_ip: Option<Ipv4Addr>,
    /// The ICMP identifier of every echo of this run.
    pub id: u16,
    /// Milliseconds between requests.
    pub interval_ms: u64,
    /// Requests sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
    /// Sequence numbers that got a reply, sorted.
    pub replied: Vec<u32>,
    /// Arrival time of each reply, nanoseconds since the Unix epoch, in arrival order.
    #[serde(skip)]
    pub reply_times_ns: Vec<u64>,
    /// Seconds after the timeline start when it was started and when it ended.
    pub started_s: f64,
    /// See `started_s`.
    pub ended_s: f64,
    /// The longest time between two replies, in milliseconds (the VM's own silence).
    pub longest_reply_gap_ms: Option<f64>,
    /// Why it produced no report, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PingOutcome {
    /// Sequence numbers in `1..=sent` without a reply.
    pub fn lost(&self) -> Vec<u32> {
        (1..=self.sent).filter(|s| self.replied.binary_search(s).is_err()).collect()
    }

    /// Fills the counts from `ping -n -D` output.
    pub fn absorb_output(&mut self, output: &str) {
        match PingReport::parse(output) {
            Some(r) => {
                self.sent = r.sent;
                self.received = r.received;
                let mut seqs: Vec<u32> = r.replies.iter().map(|x| x.seq).collect();
                seqs.sort_unstable();
                seqs.dedup();
                self.replied = seqs;
            }
            None => {
                let tail: String = output.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                self.error = Some(format!("no ping summary in its output: {tail:?}"));
            }
        }
        self.reply_times_ns = reply_times_ns(output);
        self.longest_reply_gap_ms = self
            .reply_times_ns
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64 / 1e6)
            .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))));
    }
}

/// The `[epoch.micros]` stamps `ping -D` puts before each reply line, in nanoseconds.
pub fn reply_times_ns(output: &str) -> Vec<u64> {
    output
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            let stamp = l.strip_prefix('[')?.split(']').next()?;
            let (s, frac) = stamp.split_once('.').unwrap_or((stamp, "0"));
            let secs: u64 = s.parse().ok()?;
            let digits: String = frac.chars().take(9).collect();
            let scale = 10u64.pow(9 - digits.len() as u32);
            let nanos: u64 =
                if digits.is_empty() { 0 } else { digits.parse::<u64>().ok()? * scale };
            Some(secs * 1_000_000_000 + nanos)
        })
        .collect()
}

/// A ping running in a VM's namespace; stopped and reaped by pid when dropped.
pub struct PingProc {
    /// What is known so far; counts are filled when it ends.
    pub outcome: PingOutcome,
    child: Child,
    reader: Option<JoinHandle<String>>,
    /// When it should end by itself.
    pub deadline: Instant,
}

impl PingProc {
    /// Starts `ping` in `netns` towards `target`.
    pub fn start(
        netns: &str,
        target: Ipv4Addr,
        mut outcome: PingOutcome,
        count: u32,
    ) -> std::io::Result<PingProc> {
        let interval = format!("{:.3}", outcome.interval_ms as f64 / 1000.0);
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns, "ping", "-n", "-D", "-W", "1"])
            .args(["-e", &outcome.id.to_string(), "-c", &count.to_string(), "-i", &interval])
            .arg(target.to_string())
            // Its own process group: a Ctrl-C at the terminal is ours to handle, not ping's.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let reader = child.stdout.take().map(|mut out| {
            thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                s
            })
        });
        outcome.error = None;
        let run = Duration::from_millis(outcome.interval_ms.saturating_mul(u64::from(count)));
        Ok(PingProc {
            outcome,
            child,
            reader,
            deadline: Instant::now() + run + Duration::from_secs(3),
        })
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Interrupts it (SIGINT: ping prints its summary), reaps it and reads what it saw.
    pub fn stop(mut self, ended_s: f64) -> PingOutcome {
        if self.running() {
            signal(self.child.id(), "-INT");
            let start = Instant::now();
            while self.running() && start.elapsed() < Duration::from_secs(2) {
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let out = self.reader.take().and_then(|r| r.join().ok()).unwrap_or_default();
        let mut o = std::mem::take(&mut self.outcome);
        o.ended_s = ended_s;
        o.absorb_output(&out);
        o
    }
}

impl Drop for PingProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal to one process by pid with `kill(1)` (the crate forbids `unsafe`).
pub(crate) fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
PING 198.51.100.2 (198.51.100.2) 56(84) bytes of data.
[1700000000.100000] 64 bytes from 198.51.100.2: icmp_seq=1 ttl=64 time=0.412 ms
[1700000000.300500] 64 bytes from 198.51.100.2: icmp_seq=3 ttl=64 time=0.101 ms
[1700000000.400500] 64 bytes from 198.51.100.2: icmp_seq=4 ttl=64 time=0.101 ms

--- 198.51.100.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 303ms
";

    #[test]
    fn timestamps_counts_and_own_gap_come_from_ping_output() {
        assert_eq!(
            reply_times_ns(OUTPUT),
            vec![1_700_000_000_100_000_000, 1_700_000_000_300_500_000, 1_700_000_000_400_500_000]
        );
        let mut o = PingOutcome::default();
        o.absorb_output(OUTPUT);
        assert_eq!((o.sent, o.received), (4, 3));
        assert_eq!(o.replied, vec![1, 3, 4]);
        assert_eq!(o.lost(), vec![2]);
        assert!((o.longest_reply_gap_ms.unwrap_or(0.0) - 200.5).abs() < 1e-6);
        assert_eq!(o.error, None);
    }

    #[test]
    fn output_without_summary_is_an_error_not_a_panic() {
        let mut o = PingOutcome::default();
        o.absorb_output("[12.5] 64 bytes from x: icmp_seq=1\n");
        assert!(o.error.is_some());
        assert_eq!(o.sent, 0);
        assert_eq!(
            reply_times_ns("[bad] 64 bytes from\n[1.] 64 bytes from\n"),
            vec![1_000_000_000]
        );
    }
}
