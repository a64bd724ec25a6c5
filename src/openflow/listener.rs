//! OpenFlow endpoints, written the way Open vSwitch writes them: passive `ptcp:PORT[:IP]`,
//! `pssl:PORT[:IP]` and `punix:PATH`, where switches connect (`ovs-vsctl set-controller br
//! tcp:IP:PORT`), and active `tcp:IP[:PORT]` and `ssl:IP[:PORT]`, where the controller connects
//! to a switch listening for it (`ovs-vsctl set-controller br ptcp:PORT`). Each connection gets
//! its own driver task; over TLS, both ends show a certificate signed by the other's CA.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use slog::{info, o, warn, Logger};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixListener};
use tokio::sync::mpsc;

use super::driver::{drive, ConnId, SwitchEvent};
use super::learning::App;
use super::session::SessionConfig;
use crate::tls::{handshake_error, TlsConfig};

/// The IANA port for OpenFlow.
pub const OPENFLOW_PORT: u16 = 6653;
/// How long a TCP connect or a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first and the longest wait between attempts to reach a listening switch.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(8));
/// Connections the kernel may hold for us to accept (it caps this at `net.core.somaxconn`).
/// With tokio's 128, a storm of thousands of switches overflows the queue and the switches
/// left out wait for their SYN retransmits (1 s, then 3 s, 7 s...).
const LISTEN_BACKLOG: u32 = 65_535;

/// Where the controller meets switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `ptcp:PORT[:IP]` (or a bare `IP:PORT`): switches connect to us.
    Tcp(SocketAddr),
    /// `pssl:PORT[:IP]`: switches connect to us over TLS.
    Ssl(SocketAddr),
    /// `punix:PATH`.
    Unix(PathBuf),
    /// `tcp:IP[:PORT]`: we connect to a switch that listens (`set-controller br ptcp:PORT`).
    ConnectTcp(SocketAddr),
    /// `ssl:IP[:PORT]`: we connect to a switch that listens over TLS (`pssl:PORT`).
    ConnectSsl(SocketAddr),
}

/// `PORT[:IP]` of a passive address (`0.0.0.0` and 6653 when left out).
fn port_ip(s: &str, rest: &str) -> Result<SocketAddr, String> {
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
    Ok(SocketAddr::new(ip, port))
}

/// `IP[:PORT]` of an active address (6653 when left out; IPv6 in brackets with a port).
fn ip_port(s: &str, rest: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = rest.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip = rest.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, OPENFLOW_PORT))
        .map_err(|_| format!("{s:?}: expected IP[:PORT], got {rest:?}"))
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
            return port_ip(s, rest).map(ListenAddr::Tcp);
        }
        if let Some(rest) = s.strip_prefix("pssl:") {
            return port_ip(s, rest).map(ListenAddr::Ssl);
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            return ip_port(s, rest).map(ListenAddr::ConnectTcp);
        }
        if let Some(rest) = s.strip_prefix("ssl:") {
            return ip_port(s, rest).map(ListenAddr::ConnectSsl);
        }
        s.parse::<SocketAddr>().map(ListenAddr::Tcp).map_err(|_| {
            format!(
                "{s:?}: expected ptcp:PORT[:IP], pssl:PORT[:IP], punix:PATH, IP:PORT, \
                 tcp:IP[:PORT] or ssl:IP[:PORT]"
            )
        })
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "ptcp:{}:{}", a.port(), a.ip()),
            ListenAddr::Ssl(a) => write!(f, "pssl:{}:{}", a.port(), a.ip()),
            ListenAddr::Unix(p) => write!(f, "punix:{}", p.display()),
            ListenAddr::ConnectTcp(a) => write!(f, "tcp:{a}"),
            ListenAddr::ConnectSsl(a) => write!(f, "ssl:{a}"),
        }
    }
}

impl ListenAddr {
    /// Whether the connections are secured with TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, ListenAddr::Ssl(_) | ListenAddr::ConnectSsl(_))
    }

    /// Whether switches connect to us (rather than we to a switch).
    pub fn is_passive(&self) -> bool {
        matches!(self, ListenAddr::Tcp(_) | ListenAddr::Ssl(_) | ListenAddr::Unix(_))
    }
}

/// Why a TLS address cannot be used.
const NO_TLS: &str = "needs --private-key, --certificate and --ca-cert";

/// Why an address cannot be used as asked.
fn unusable(addr: &ListenAddr, why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {why}"))
}

/// What every connection of one endpoint shares.
#[derive(Clone)]
pub struct Shared {
    /// Numbers the connections of the whole process.
    pub ids: Arc<AtomicU64>,
    /// The session settings.
    pub cfg: SessionConfig,
    /// Where the drivers' events go.
    pub events: mpsc::Sender<(ConnId, SwitchEvent)>,
    /// The app each connection runs in its own task, if any.
    pub app: Option<App>,
    /// The log.
    pub log: Logger,
}

impl Shared {
    /// Runs one connection, numbered now and named by `peer`, until it closes.
    async fn run<S>(self, stream: S, peer: impl FnOnce(ConnId) -> String)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let conn = ConnId(self.ids.fetch_add(1, Ordering::Relaxed));
        drive(stream, conn, peer(conn), self.cfg, self.app, self.events, self.log).await;
    }

    /// Runs one connection in a task of its own.
    fn spawn<S>(&self, stream: S, peer: impl FnOnce(ConnId) -> String + Send + 'static)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tokio::spawn(self.clone().run(stream, peer));
    }
}

/// A bound listener, before it accepts.
pub enum Bound {
    /// TCP.
    Tcp(TcpListener),
    /// TCP, each connection secured with TLS before its driver starts.
    Ssl(TcpListener, TlsConfig),
    /// Unix socket, with its path (removed when the listener goes away).
    Unix(UnixListener, PathBuf),
}

impl Bound {
    /// Binds a passive address (`pssl:` needs `tls`). A stale unix socket file left by a dead
    /// process is replaced.
    pub async fn bind(addr: &ListenAddr, tls: Option<&TlsConfig>) -> std::io::Result<Bound> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Bound::Tcp(listen_tcp(*a)?)),
            ListenAddr::Ssl(a) => {
                let tls = tls.ok_or_else(|| unusable(addr, NO_TLS))?;
                Ok(Bound::Ssl(listen_tcp(*a)?, tls.clone()))
            }
            ListenAddr::Unix(p) => {
                if p.exists() && std::os::unix::net::UnixStream::connect(p).is_err() {
                    std::fs::remove_file(p)?;
                }
                Ok(Bound::Unix(UnixListener::bind(p)?, p.clone()))
            }
            ListenAddr::ConnectTcp(_) | ListenAddr::ConnectSsl(_) => {
                Err(unusable(addr, "is active: the controller connects there, it cannot listen"))
            }
        }
    }

    /// The address actually bound (with the real port when 0 was asked for), as a switch's
    /// `set-controller` takes it.
    pub fn local(&self) -> String {
        match self {
            Bound::Tcp(l) | Bound::Ssl(l, _) => {
                let scheme = if matches!(self, Bound::Ssl(..)) { "ssl" } else { "tcp" };
                match l.local_addr() {
                    Ok(a) => format!("{scheme}:{a}"),
                    Err(_) => format!("{scheme}:?"),
                }
            }
            Bound::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    /// Accepts connections forever, spawning a driver for each. Over TLS the handshake runs in
    /// a task of its own (a slow client holds up no other), and a refused one is logged with
    /// why.
    pub async fn serve(self, shared: Shared) {
        let log = shared.log.clone();
        info!(log, "listening for OpenFlow switches"; "on" => self.local());
        loop {
            match &self {
                Bound::Tcp(l) => match l.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        shared.spawn(s, move |_| format!("tcp:{peer}"));
                    }
                    Err(e) => accept_failed(&log, e).await,
                },
                Bound::Ssl(l, tls) => match l.accept().await {
                    Ok((s, peer)) => {
                        let _ = s.set_nodelay(true);
                        let peer = format!("ssl:{peer}");
                        let (shared, acceptor) = (shared.clone(), tls.acceptor());
                        tokio::spawn(async move {
                            let hs = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(s));
                            match hs.await {
                                Ok(Ok(s)) => shared.run(s, |_| peer).await,
                                Ok(Err(e)) => warn!(shared.log, "switch refused";
                                    "peer" => &peer, "error" => %handshake_error(&peer, e)),
                                Err(_) => warn!(shared.log, "switch refused";
                                    "peer" => &peer, "error" => "TLS handshake timed out"),
                            }
                        });
                    }
                    Err(e) => accept_failed(&log, e).await,
                },
                Bound::Unix(l, p) => match l.accept().await {
                    Ok((s, _)) => {
                        let path = p.display().to_string();
                        shared.spawn(s, move |conn| format!("unix:{path}#{}", conn.0));
                    }
                    Err(e) => accept_failed(&log, e).await,
                },
            }
        }
    }
}

/// A TCP listener on `addr` with a backlog of [`LISTEN_BACKLOG`] (and, like
/// `TcpListener::bind`, `SO_REUSEADDR`, so that a restarted controller gets its port back).
/// The OVSDB passive remotes listen so too: a thousand hypervisors reconnect at once.
pub(crate) fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Connects to a listening switch (`tcp:` or `ssl:`) and runs its connection; when it ends or
/// cannot be made, tries again after a backoff that doubles up to 8 s (and starts over once a
/// connection was made). Runs until the task is dropped.
pub async fn connect_forever(addr: ListenAddr, tls: Option<TlsConfig>, shared: Shared) {
    let log = shared.log.new(o!("switch" => addr.to_string()));
    info!(log, "connecting to an OpenFlow switch");
    let mut delay = BACKOFF.0;
    loop {
        match connect(&addr, tls.as_ref(), &shared).await {
            Ok(()) => delay = BACKOFF.0,
            Err(e) => {
                warn!(log, "cannot reach the switch"; "error" => %e, "retry_in_ms" => delay.as_millis());
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF.1);
    }
}

/// One connection to a listening switch, run until it closes.
async fn connect(
    addr: &ListenAddr,
    tls: Option<&TlsConfig>,
    shared: &Shared,
) -> std::io::Result<()> {
    let (ListenAddr::ConnectTcp(a) | ListenAddr::ConnectSsl(a)) = addr else {
        return Err(unusable(addr, "is passive: the controller listens there"));
    };
    let timed_out =
        || std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{addr}: timed out"));
    let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(a))
        .await
        .map_err(|_| timed_out())??;
    let _ = s.set_nodelay(true);
    let peer = addr.to_string();
    if let ListenAddr::ConnectSsl(_) = addr {
        let tls = tls.ok_or_else(|| unusable(addr, NO_TLS))?;
        // The name is only a formality for rustls: the verifier checks the chain alone.
        let name = tokio_rustls::rustls::pki_types::ServerName::IpAddress(a.ip().into());
        let s = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connector().connect(name, s))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| handshake_error(&peer, e))?;
        shared.clone().run(s, |_| peer).await;
    } else {
        shared.clone().run(s, |_| peer).await;
    }
    Ok(())
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
        assert_eq!(
            "pssl:0:127.0.0.1".parse::<ListenAddr>().unwrap(),
            ListenAddr::Ssl("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            "ssl:192.0.2.7".parse::<ListenAddr>().unwrap(),
            ListenAddr::ConnectSsl("192.0.2.7:6653".parse().unwrap())
        );
        assert_eq!(
            "tcp:192.0.2.7:6633".parse::<ListenAddr>().unwrap(),
            ListenAddr::ConnectTcp("192.0.2.7:6633".parse().unwrap())
        );
        let e = "ssl:host:6653".parse::<ListenAddr>().unwrap_err();
        assert!(e.contains("expected IP[:PORT]"), "{e}");
        assert!("tcp:".parse::<ListenAddr>().is_err());
    }
}
