//! Ctrl-C and SIGTERM as a flag: tokio's signal handling on a small thread of its own (no
//! `unsafe`), polled by the runner between and during steps, so cleanup always runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

/// Set once SIGINT or SIGTERM arrived.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// A flag nothing sets but [`Interrupt::trigger`].
    pub fn never() -> Interrupt {
        Interrupt::default()
    }

    /// A flag set by SIGINT or SIGTERM; from now on these no longer end the process.
    pub fn on_signals() -> anyhow::Result<Interrupt> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the signal runtime")?;
        let (mut int, mut term) = rt
            .block_on(async {
                Ok::<_, std::io::Error>((
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                ))
            })
            .context("installing the SIGINT/SIGTERM handlers")?;
        let me = Interrupt::default();
        let flag = me.flag.clone();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                rt.block_on(async move {
                    loop {
                        tokio::select! {
                            _ = int.recv() => {}
                            _ = term.recv() => {}
                        }
                        if !flag.swap(true, Ordering::SeqCst) {
                            eprintln!(
                                "interrupted: stopping and cleaning up (processes, namespaces)..."
                            );
                        }
                    }
                })
            })
            .context("starting the signal thread")?;
        Ok(me)
    }

    /// Sets the flag.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `d` unless interrupted; returns whether it slept the whole time.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.is_set() {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_ends_early_once_triggered() {
        let i = Interrupt::never();
        assert!(i.sleep(Duration::from_millis(10)));
        let j = i.clone();
        let t = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            j.trigger();
        });
        let start = Instant::now();
        assert!(!i.sleep(Duration::from_secs(30)));
        assert!(start.elapsed() < Duration::from_secs(5));
        let _ = t.join();
    }
}
