//! The emulated switches' tokio tasks and the measurement of one controller: connection storm,
//! idle memory and CPU, switch-initiated echo.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

use super::switch::{Counts, EmulatedSwitch, Milestone};
use crate::openflow::framing::{Frame, OfpCodec};

/// What all switches are told to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Answer the controller, nothing more.
    Serve,
    /// Send this many echo requests, one after the other, then serve.
    Echo(u32),
    /// Close the connection.
    Stop,
}

/// When a switch counts as handshaken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadyOn {
    /// Its features were answered, and a barrier after the controller's first flow mods.
    Barrier,
    /// Its features were answered, and the controller's first flow mod arrived (for
    /// controllers that send no barrier, such as os-ken's simple_switch_13).
    FlowMod,
}

/// What one switch reports to the coordinator while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// It is now handshaken (per [`ReadyOn`]).
    Ready,
    /// It failed (its report says why).
    Failed,
    /// Its echo run is over.
    EchoDone,
}

/// What one switch saw, when it stops.
#[derive(Debug, Clone, Default)]
pub struct SwitchReport {
    /// From the common start until its FEATURES_REPLY went out.
    pub features: Option<Duration>,
    /// Until the first FLOW_MOD arrived.
    pub first_flow_mod: Option<Duration>,
    /// Until a barrier after the first flow mods was answered.
    pub confirmed: Option<Duration>,
    /// Round trip times of its own echo requests.
    pub echo_rtts: Vec<Duration>,
    /// What the controller sent it.
    pub counts: Counts,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Runs switch `index` against `addr` until told to stop; progress goes to `progress`.
pub async fn switch_task(
    index: usize,
    addr: SocketAddr,
    n_ports: u16,
    start: Instant,
    ready_on: ReadyOn,
    mut orders: watch::Receiver<Order>,
    progress: mpsc::UnboundedSender<Progress>,
) -> SwitchReport {
    let mut report = SwitchReport::default();
    let mut sw = EmulatedSwitch::new(super::reactive::dpid(index), n_ports);
    let fail = |report: &mut SwitchReport, why: String| {
        report.error = Some(why);
        let _ = progress.send(Progress::Failed);
    };
    let stream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            fail(&mut report, format!("connecting to {addr}: {e}"));
            return report;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, OfpCodec);
    if let Err(e) = framed.send(sw.hello()).await {
        fail(&mut report, format!("sending HELLO: {e}"));
        return report;
    }
    let (mut out, mut milestones) = (Vec::new(), Vec::new());
    let mut announced = false;
    // The echo run in progress: (requests left after the one in flight, its number, sent at).
    let mut echo: Option<(u32, u32, Instant)> = None;
    let mut next_echo = 0u32;
    loop {
        tokio::select! {
            frame = framed.next() => {
                let m = match frame {
                    Some(Ok(Frame::Message(m))) => m,
                    Some(Ok(Frame::Malformed { error, .. })) => {
                        fail(&mut report, format!("controller sent a malformed message: {error}"));
                        break;
                    }
                    Some(Err(e)) => {
                        fail(&mut report, format!("connection: {e}"));
                        break;
                    }
                    None => {
                        if !announced {
                            fail(&mut report, "the controller closed the connection".into());
                        }
                        break;
                    }
                };
                sw.handle(m, &mut out, &mut milestones);
                let mut sent = true;
                for m in out.drain(..) {
                    sent &= framed.feed(m).await.is_ok();
                }
                sent &= framed.flush().await.is_ok();
                if !sent {
                    fail(&mut report, "sending to the controller failed".into());
                    break;
                }
                let now = start.elapsed();
                for ms in milestones.drain(..) {
                    match ms {
                        Milestone::Features => report.features = Some(now),
                        Milestone::FirstFlowMod => report.first_flow_mod = Some(now),
                        Milestone::ProgramConfirmed => report.confirmed = Some(now),
                        Milestone::EchoReply(seq) => {
                            if let Some((left, s, at)) = echo {
                                if s == seq {
                                    report.echo_rtts.push(at.elapsed());
                                    echo = None;
                                    if left == 0 {
                                        let _ = progress.send(Progress::EchoDone);
                                    } else {
                                        let r = EmulatedSwitch::echo_request(next_echo);
                                        echo = Some((left - 1, next_echo, Instant::now()));
                                        next_echo += 1;
                                        if framed.send(r).await.is_err() {
                                            fail(&mut report, "sending an echo failed".into());
                                            return finish(report, sw);
                                        }
                                    }
                                }
                            }
                        }
                        Milestone::VersionRefused => {
                            fail(&mut report, "the controller does not speak OpenFlow 1.3".into());
                            return finish(report, sw);
                        }
                        Milestone::Hello => {}
                    }
                }
                let ready = report.features.is_some()
                    && match ready_on {
                        ReadyOn::Barrier => report.confirmed.is_some(),
                        ReadyOn::FlowMod => report.first_flow_mod.is_some(),
                    };
                if ready && !announced {
                    announced = true;
                    let _ = progress.send(Progress::Ready);
                }
            }
            changed = orders.changed() => {
                let order = if changed.is_ok() { *orders.borrow_and_update() } else { Order::Stop };
                match order {
                    Order::Serve => {}
                    Order::Stop => break,
                    Order::Echo(n) if n > 0 && echo.is_none() => {
                        let r = EmulatedSwitch::echo_request(next_echo);
                        echo = Some((n - 1, next_echo, Instant::now()));
                        next_echo += 1;
                        if framed.send(r).await.is_err() {
                            fail(&mut report, "sending an echo failed".into());
                            break;
                        }
                    }
                    Order::Echo(_) => {}
                }
            }
        }
    }
    finish(report, sw)
}

fn finish(mut report: SwitchReport, sw: EmulatedSwitch) -> SwitchReport {
    report.counts = sw.counts();
    report
}

/// Percentile `p` (0..=100) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64)).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[i].as_secs_f64() * 1e3)
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) a process has used, in clock ticks (`/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`; 100 on Linux).
pub fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 50.0), Some(50.0));
        assert_eq!(percentile_ms(&v, 99.0), Some(99.0));
        assert_eq!(percentile_ms(&v, 100.0), Some(100.0));
        assert_eq!(percentile_ms(&[], 50.0), None);
    }

    #[test]
    fn reads_our_own_memory_and_cpu() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|k| k > 0));
        assert!(cpu_ticks(me).is_some());
        assert!(rss_kib(u32::MAX).is_none());
    }
}
