//! A hypervisor's management link to the controller, made cuttable: a relay the runner owns
//! sits between the two ends of each connection (OpenFlow: ovs-vswitchd -> relay -> the
//! controller's listener; OVSDB: the controller -> relay -> ovsdb-server), and a step cuts or
//! restores it.
//!
//! A relay rather than removing a socket file or adding a firewall rule: a unix socket's
//! established connections survive the removal of its path, the unix sockets cross namespaces
//! so no packet filter sees them, and a relay cuts unix and TCP transports alike, only the
//! connections of the hypervisor it serves, and nothing outside the lab.
//!
//! - `reset`: every relayed connection is shut down at once (both ends see the connection
//!   close, as after a reset) and new ones are closed as soon as they are accepted.
//! - `blackhole`: nothing is relayed any more, but every connection stays open (as when a cable
//!   is pulled): bytes wait in the socket buffers, and the ends notice only through their own
//!   keepalives (ovs-vswitchd's inactivity probe, the controller's echo timeout). New
//!   connections are accepted and held.
//!
//! Restoring relays again: held bytes flow, held connections are carried on, and a connection
//! an end closed meanwhile is closed at the other end too.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::Context;

use super::spec::CutMode;

/// How often relay threads look at the link's state.
const POLL: Duration = Duration::from_millis(20);

/// Where a relay listens or connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address (the relay listens on 127.0.0.1 with a free port when given port 0).
    Tcp(SocketAddr),
}

/// One accepted or connected stream.
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn connect(to: &Endpoint) -> io::Result<Conn> {
        match to {
            Endpoint::Unix(p) => UnixStream::connect(p).map(Conn::Unix),
            Endpoint::Tcp(a) => {
                TcpStream::connect_timeout(a, Duration::from_secs(1)).map(Conn::Tcp)
            }
        }
    }

    fn try_clone(&self) -> io::Result<Conn> {
        match self {
            Conn::Unix(s) => s.try_clone().map(Conn::Unix),
            Conn::Tcp(s) => s.try_clone().map(Conn::Tcp),
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Conn::Unix(s) => s.shutdown(how),
            Conn::Tcp(s) => s.shutdown(how),
        };
    }

    fn set_timeout(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.set_nonblocking(false).and_then(|()| s.set_read_timeout(Some(POLL))),
            Conn::Tcp(s) => {
                let _ = s.set_nodelay(true);
                s.set_nonblocking(false).and_then(|()| s.set_read_timeout(Some(POLL)))
            }
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.write_all(buf),
            Conn::Tcp(s) => s.write_all(buf),
        }
    }
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Conn> {
        match self {
            Listener::Unix(l) => l.accept().map(|(s, _)| Conn::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| Conn::Tcp(s)),
        }
    }
}

/// The link's state, shared with the relay threads.
struct Shared {
    /// 0 up, 1 cut by reset, 2 cut by blackhole.
    state: AtomicU8,
    /// Bumped by every reset: connections of an older epoch close.
    epoch: AtomicU64,
    /// The relay is being dropped.
    stop: AtomicBool,
    /// Connections accepted so far.
    accepted: AtomicUsize,
}

const UP: u8 = 0;
const RESET: u8 = 1;
const BLACKHOLE: u8 = 2;

/// A cuttable relay; stops (closing everything it relays) when dropped.
pub struct LinkRelay {
    /// Where it listens (with the actual port for TCP).
    pub listen: Endpoint,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl LinkRelay {
    /// Listens on `listen` and relays every connection to `upstream`.
    pub fn start(listen: Endpoint, upstream: Endpoint) -> anyhow::Result<LinkRelay> {
        let (listener, listen) = match &listen {
            Endpoint::Unix(p) => {
                let l =
                    UnixListener::bind(p).with_context(|| format!("binding {}", p.display()))?;
                l.set_nonblocking(true)?;
                (Listener::Unix(l), listen.clone())
            }
            Endpoint::Tcp(a) => {
                let l = TcpListener::bind(a).with_context(|| format!("binding {a}"))?;
                l.set_nonblocking(true)?;
                let at = l.local_addr()?;
                (Listener::Tcp(l), Endpoint::Tcp(at))
            }
        };
        let shared = Arc::new(Shared {
            state: AtomicU8::new(UP),
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
        });
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name("link-relay".into())
            .spawn(move || accept_loop(&listener, &upstream, &s))
            .context("starting the relay thread")?;
        Ok(LinkRelay { listen, shared, acceptor: Some(acceptor) })
    }

    /// A TCP relay on 127.0.0.1 with a free port.
    pub fn start_tcp(upstream: SocketAddr) -> anyhow::Result<LinkRelay> {
        LinkRelay::start(
            Endpoint::Tcp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            Endpoint::Tcp(upstream),
        )
    }

    /// The TCP port it listens on (0 for a unix relay).
    pub fn port(&self) -> u16 {
        match &self.listen {
            Endpoint::Tcp(a) => a.port(),
            Endpoint::Unix(_) => 0,
        }
    }

    /// Cuts the link.
    pub fn cut(&self, mode: CutMode) {
        match mode {
            CutMode::Reset => {
                self.shared.state.store(RESET, Ordering::SeqCst);
                self.shared.epoch.fetch_add(1, Ordering::SeqCst);
            }
            CutMode::Blackhole => self.shared.state.store(BLACKHOLE, Ordering::SeqCst),
        }
    }

    /// Relays again.
    pub fn restore(&self) {
        self.shared.state.store(UP, Ordering::SeqCst);
    }

    /// Whether it is cut.
    pub fn is_cut(&self) -> bool {
        self.shared.state.load(Ordering::SeqCst) != UP
    }

    /// Connections accepted since it started.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for LinkRelay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        if let Endpoint::Unix(p) = &self.listen {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn accept_loop(listener: &Listener, upstream: &Endpoint, s: &Arc<Shared>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    while !s.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok(down) => {
                s.accepted.fetch_add(1, Ordering::SeqCst);
                if s.state.load(Ordering::SeqCst) == RESET {
                    down.shutdown(Shutdown::Both);
                    continue;
                }
                let (up, shared) = (upstream.clone(), s.clone());
                handlers.push(thread::spawn(move || carry(down, &up, &shared)));
            }
            Err(_) => thread::sleep(POLL),
        }
        handlers.retain(|h| !h.is_finished());
    }
    for h in handlers {
        let _ = h.join();
    }
}

/// Carries one accepted connection: connects upstream once the link is up, then pumps both
/// ways until either end closes, a reset cuts it, or the relay stops.
fn carry(down: Conn, upstream: &Endpoint, s: &Arc<Shared>) {
    let epoch = s.epoch.load(Ordering::SeqCst);
    let alive =
        |s: &Shared| !s.stop.load(Ordering::SeqCst) && s.epoch.load(Ordering::SeqCst) == epoch;
    while s.state.load(Ordering::SeqCst) == BLACKHOLE && alive(s) {
        thread::sleep(POLL);
    }
    if !alive(s) || down.set_timeout().is_err() {
        down.shutdown(Shutdown::Both);
        return;
    }
    let Ok(up) = Conn::connect(upstream) else {
        down.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(down2), Ok(up2)) = (down.try_clone(), up.try_clone()) else {
        down.shutdown(Shutdown::Both);
        up.shutdown(Shutdown::Both);
        return;
    };
    if up.set_timeout().is_err() {
        down.shutdown(Shutdown::Both);
        up.shutdown(Shutdown::Both);
        return;
    }
    let s2 = s.clone();
    let back = thread::spawn(move || pump(up2, down2, epoch, &s2));
    pump(down, up, epoch, s);
    let _ = back.join();
}

/// Copies `from` to `to` while the link is up; holds while it is blackholed; closes both on
/// an end's close, on a reset or when the relay stops.
fn pump(mut from: Conn, mut to: Conn, epoch: u64, s: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if s.stop.load(Ordering::SeqCst) || s.epoch.load(Ordering::SeqCst) != epoch {
            break;
        }
        if s.state.load(Ordering::SeqCst) == BLACKHOLE {
            thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    from.shutdown(Shutdown::Both);
    to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_sock(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("psc-link-{tag}-{}.sock", std::process::id()))
    }

    /// An echo server on a unix socket; returns its path.
    fn echo_server(tag: &str) -> PathBuf {
        let path = temp_sock(tag);
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).expect("binds");
        thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                thread::spawn(move || {
                    let mut s = s;
                    let mut b = [0u8; 256];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        path
    }

    fn round_trip(c: &mut UnixStream, msg: &[u8]) -> io::Result<Vec<u8>> {
        c.write_all(msg)?;
        let mut got = vec![0u8; msg.len()];
        c.read_exact(&mut got)?;
        Ok(got)
    }

    #[test]
    fn reset_closes_connections_and_refuses_new_ones_until_restored() {
        let server = echo_server("reset-up");
        let front = temp_sock("reset");
        let _ = std::fs::remove_file(&front);
        let relay = LinkRelay::start(Endpoint::Unix(front.clone()), Endpoint::Unix(server.clone()))
            .expect("starts");
        let mut c = UnixStream::connect(&front).expect("connects");
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        assert_eq!(round_trip(&mut c, b"hello").expect("relayed"), b"hello");
        relay.cut(CutMode::Reset);
        assert!(relay.is_cut());
        let mut b = [0u8; 8];
        assert!(matches!(c.read(&mut b), Ok(0) | Err(_)), "the cut closes the connection");
        let mut refused = UnixStream::connect(&front).expect("accepted, then closed");
        refused.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        assert!(matches!(refused.read(&mut b), Ok(0) | Err(_)));
        relay.restore();
        let mut again = UnixStream::connect(&front).expect("connects");
        again.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        assert_eq!(round_trip(&mut again, b"back").expect("relayed"), b"back");
        drop(relay);
        assert!(!front.exists(), "the relay removes its socket");
        let _ = std::fs::remove_file(server);
    }

    #[test]
    fn blackhole_holds_bytes_and_delivers_them_on_restore() {
        let server = echo_server("hole-up");
        let front = temp_sock("hole");
        let _ = std::fs::remove_file(&front);
        let relay = LinkRelay::start(Endpoint::Unix(front.clone()), Endpoint::Unix(server.clone()))
            .expect("starts");
        let mut c = UnixStream::connect(&front).expect("connects");
        c.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
        assert_eq!(round_trip(&mut c, b"one").expect("relayed"), b"one");
        relay.cut(CutMode::Blackhole);
        thread::sleep(POLL * 3);
        c.write_all(b"two").expect("writes into the buffer");
        let mut b = [0u8; 3];
        assert!(c.read_exact(&mut b).is_err(), "nothing comes back while cut");
        relay.restore();
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        c.read_exact(&mut b).expect("held bytes arrive");
        assert_eq!(&b, b"two");
        drop(relay);
        let _ = std::fs::remove_file(server);
    }
}
