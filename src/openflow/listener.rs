//! Passive OpenFlow endpoints, written the way Open vSwitch writes them: `ptcp:PORT[:IP]` and
//! `punix:PATH`. Each accepted connection gets its own driver task.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use slog::{info, warn, Logger};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;

use super::driver::{drive, ConnId, SwitchEvent};
use super::learning::App;
use super::session::SessionConfig;

/// The IANA port for OpenFlow.
pub const OPENFLOW_PORT: u16 = 6653;

/// Where to listen for switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `ptcp:PORT[:IP]` (or a bare `IP:PORT`).
    Tcp(SocketAddr),
    /// `punix:PATH`.
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(path) = s.strip_prefix("punix:") {
            if path.is_empty() {
                return Err(format!("{s:?}: punix: needs a path"));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("ptcp:") {
            let (port, ip) = match rest.split_once(':') {
                Some((p, ip)) => (p, ip.trim_start_matches('[').trim_end_matches(']')),
                None => (rest, ""),
            };
            let port: u16 = if port.is_empty() {
                OPENFLOW_PORT
            } else {
                port.parse().map_err(|_| format!("{s:?}: bad port {port:?}; expected 0-65535"))?
            };
            let ip: IpAddr = if ip.is_empty() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                ip.parse().map_err(|_| format!("{s:?}: bad IP address {ip:?}"))?
            };
            return Ok(ListenAddr::Tcp(SocketAddr::new(ip, port)));
        }
        s.parse::<SocketAddr>()
            .map(ListenAddr::Tcp)
            .map_err(|_| format!("{s:?}: expected ptcp:PORT[:IP], punix:PATH or IP:PORT"))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "ptcp:{}:{}", a.port(), a.ip()),
            ListenAddr::Unix(p) => write!(f, "punix:{}", p.display()),
        }
    }
}

/// A bound listener, before it accepts.
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket, with its path (removed when the listener goes away).
    Unix(UnixListener, PathBuf),
}

impl Bound {
    /// Binds the address. A stale unix socket file left by a dead process is replaced.
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Bound> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Bound::Tcp(TcpListener::bind(a).await?)),
            ListenAddr::Unix(p) => {
                if p.exists() && std::os::unix::net::UnixStream::connect(p).is_err() {
                    std::fs::remove_file(p)?;
                }
                Ok(Bound::Unix(UnixListener::bind(p)?, p.clone()))
            }
        }
    }

    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local(&self) -> String {
        match self {
            Bound::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{a}"),
                Err(_) => "tcp:?".into(),
            },
            Bound::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    /// Accepts connections forever, spawning a driver for each.
    pub async fn serve(
        self,
        ids: Arc<AtomicU64>,
        cfg: SessionConfig,
        app: Option<App>,
        events: mpsc::Sender<(ConnId, SwitchEvent)>,
        log: Logger,
    ) {
        info!(log, "listening for OpenFlow switches"; "on" => self.local());
        loop {
            let conn = ConnId(ids.fetch_add(1, Ordering::Relaxed));
            let (cfg, events, log) = (cfg.clone(), events.clone(), log.clone());
            match &self {
                Bound::Tcp(l) => match l.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        tokio::spawn(drive(s, conn, format!("tcp:{peer}"), cfg, app, events, log));
                    }
                    Err(e) => accept_failed(&log, e).await,
                },
                Bound::Unix(l, p) => match l.accept().await {
                    Ok((s, _)) => {
                        let peer = format!("unix:{}#{}", p.display(), conn.0);
                        tokio::spawn(drive(s, conn, peer, cfg, app, events, log));
                    }
                    Err(e) => accept_failed(&log, e).await,
                },
            }
        }
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        if let Bound::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn accept_failed(log: &Logger, e: std::io::Error) {
    // Out of file descriptors and the like: wait a little rather than spin.
    warn!(log, "accept failed"; "error" => %e);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ovs_style_addresses() {
        assert_eq!(
            "ptcp:6653".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("0.0.0.0:6653".parse().unwrap())
        );
        assert_eq!(
            "ptcp:0:127.0.0.1".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            "ptcp:6653:[::1]".parse::<ListenAddr>().unwrap(),
            ListenAddr::Tcp("[::1]:6653".parse().unwrap())
        );
        assert_eq!(
            "punix:/tmp/x".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("/tmp/x".into())
        );
        let e = "ptcp:http".parse::<ListenAddr>().unwrap_err();
        assert!(e.contains("bad port \"http\""), "{e}");
        assert!("tcp:1.2.3.4".parse::<ListenAddr>().is_err());
    }
}
