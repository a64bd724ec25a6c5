//! OVSDB remotes, written the way Open vSwitch writes them (ovsdb-server(1) `--remote`,
//! `ovs-vsctl set-manager`): active `tcp:IP[:PORT]`, `ssl:IP[:PORT]` and `unix:PATH`, where
//! the controller connects to an ovsdb-server; passive `ptcp:[PORT][:IP]`,
//! `pssl:[PORT][:IP]` and `punix:PATH`, where ovsdb-servers connect to the controller.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// The IANA port for OVSDB, used when a TCP remote names none.
pub const OVSDB_PORT: u16 = 6640;

/// Where to reach ovsdb-servers, or where to wait for them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Remote {
    /// `tcp:IP[:PORT]`: connect to the server.
    Tcp(SocketAddr),
    /// `ssl:IP[:PORT]`: connect to the server over TLS.
    Ssl(SocketAddr),
    /// `unix:PATH`: connect to the server's unix socket.
    Unix(PathBuf),
    /// `ptcp:[PORT][:IP]`: listen; servers connect to us.
    PTcp(SocketAddr),
    /// `pssl:[PORT][:IP]`: listen for TLS; servers connect to us.
    PSsl(SocketAddr),
    /// `punix:PATH`: listen on a unix socket; servers connect to us.
    PUnix(PathBuf),
}

/// Why a remote string was refused; every variant names the remote and the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// No known `scheme:` prefix.
    #[error("remote {remote:?}: unknown scheme {scheme:?}; expected tcp:IP[:PORT], ssl:IP[:PORT], unix:PATH, ptcp:[PORT][:IP], pssl:[PORT][:IP] or punix:PATH")]
    UnknownScheme {
        /// The whole remote.
        remote: String,
        /// What stood before the first `:` (the whole string if none).
        scheme: String,
    },
    /// A port that is not a number in 0..=65535.
    #[error("remote {remote:?}: bad port {port:?}; expected a number from 0 to 65535")]
    BadPort {
        /// The whole remote.
        remote: String,
        /// The port as written.
        port: String,
    },
    /// An address that is not an IPv4 or IPv6 literal.
    #[error("remote {remote:?}: bad IP address {ip:?}; expected an IPv4 address or an IPv6 address in [brackets]")]
    BadAddress {
        /// The whole remote.
        remote: String,
        /// The address as written.
        ip: String,
    },
    /// `unix:` or `punix:` without a path.
    #[error("remote {remote:?}: {scheme}: needs a socket path")]
    EmptyPath {
        /// The whole remote.
        remote: String,
        /// `unix` or `punix`.
        scheme: &'static str,
    },
}

impl Remote {
    /// True for `ptcp:`, `pssl:` and `punix:`, where the controller listens.
    pub fn is_passive(&self) -> bool {
        matches!(self, Remote::PTcp(_) | Remote::PSsl(_) | Remote::PUnix(_))
    }

    /// True for `ssl:` and `pssl:`, which need a key, a certificate and a CA certificate.
    pub fn is_tls(&self) -> bool {
        matches!(self, Remote::Ssl(_) | Remote::PSsl(_))
    }
}

/// Splits `IP[:PORT]` (IPv6 in brackets) into its parts as written.
fn split_ip_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':')),
            None => (s, None),
        };
    }
    match s.split_once(':') {
        Some((ip, port)) => (ip, Some(port)),
        None => (s, None),
    }
}

fn port(remote: &str, p: Option<&str>) -> Result<u16, RemoteError> {
    match p {
        None | Some("") => Ok(OVSDB_PORT),
        Some(p) => {
            p.parse().map_err(|_| RemoteError::BadPort { remote: remote.into(), port: p.into() })
        }
    }
}

fn ip(remote: &str, ip: &str) -> Result<IpAddr, RemoteError> {
    let bare = ip.trim_start_matches('[').trim_end_matches(']');
    bare.parse().map_err(|_| RemoteError::BadAddress { remote: remote.into(), ip: ip.into() })
}

fn path(remote: &str, scheme: &'static str, p: &str) -> Result<PathBuf, RemoteError> {
    if p.is_empty() {
        return Err(RemoteError::EmptyPath { remote: remote.into(), scheme });
    }
    Ok(PathBuf::from(p))
}

impl FromStr for Remote {
    type Err = RemoteError;

    fn from_str(s: &str) -> Result<Remote, RemoteError> {
        let (scheme, rest) = s.split_once(':').unwrap_or((s, ""));
        let active = || -> Result<SocketAddr, RemoteError> {
            let (addr, p) = split_ip_port(rest);
            Ok(SocketAddr::new(ip(s, addr)?, port(s, p)?))
        };
        // ptcp:[PORT][:IP] and pssl:[PORT][:IP]
        let passive = || -> Result<SocketAddr, RemoteError> {
            let (p, addr) = match rest.split_once(':') {
                Some((p, a)) => (p, a),
                None => (rest, ""),
            };
            let addr =
                if addr.is_empty() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { ip(s, addr)? };
            Ok(SocketAddr::new(addr, port(s, Some(p))?))
        };
        match scheme {
            "tcp" => Ok(Remote::Tcp(active()?)),
            "ssl" => Ok(Remote::Ssl(active()?)),
            "unix" => Ok(Remote::Unix(path(s, "unix", rest)?)),
            "ptcp" => Ok(Remote::PTcp(passive()?)),
            "pssl" => Ok(Remote::PSsl(passive()?)),
            "punix" => Ok(Remote::PUnix(path(s, "punix", rest)?)),
            _ => Err(RemoteError::UnknownScheme { remote: s.into(), scheme: scheme.into() }),
        }
    }
}

impl fmt::Display for Remote {
    /// The Open vSwitch spelling, which parses back to the same remote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Tcp(a) => write!(f, "tcp:{a}"),
            Remote::Ssl(a) => write!(f, "ssl:{a}"),
            Remote::Unix(p) => write!(f, "unix:{}", p.display()),
            Remote::PTcp(a) if a.is_ipv6() => write!(f, "ptcp:{}:[{}]", a.port(), a.ip()),
            Remote::PTcp(a) => write!(f, "ptcp:{}:{}", a.port(), a.ip()),
            Remote::PSsl(a) if a.is_ipv6() => write!(f, "pssl:{}:[{}]", a.port(), a.ip()),
            Remote::PSsl(a) => write!(f, "pssl:{}:{}", a.port(), a.ip()),
            Remote::PUnix(p) => write!(f, "punix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Remote {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_active_remotes() {
        assert_eq!(ok("tcp:192.0.2.7:6641"), Remote::Tcp("192.0.2.7:6641".parse().unwrap()));
        assert_eq!(ok("tcp:192.0.2.7"), Remote::Tcp("192.0.2.7:6640".parse().unwrap()));
        assert_eq!(ok("tcp:[::1]:7000"), Remote::Tcp("[::1]:7000".parse().unwrap()));
        assert_eq!(ok("tcp:[::1]"), Remote::Tcp("[::1]:6640".parse().unwrap()));
        assert_eq!(
            ok("unix:/run/openvswitch/db.sock"),
            Remote::Unix("/run/openvswitch/db.sock".into())
        );
        assert!(!ok("unix:/x").is_passive());
        assert_eq!(ok("ssl:192.0.2.7:6641"), Remote::Ssl("192.0.2.7:6641".parse().unwrap()));
        assert_eq!(ok("ssl:[::1]"), Remote::Ssl("[::1]:6640".parse().unwrap()));
        assert!(ok("ssl:192.0.2.7").is_tls() && !ok("ssl:192.0.2.7").is_passive());
        assert!(!ok("tcp:192.0.2.7").is_tls());
    }

    #[test]
    fn parses_passive_remotes() {
        assert_eq!(ok("ptcp:6640"), Remote::PTcp("0.0.0.0:6640".parse().unwrap()));
        assert_eq!(ok("ptcp:"), Remote::PTcp("0.0.0.0:6640".parse().unwrap()));
        assert_eq!(ok("ptcp:0:127.0.0.1"), Remote::PTcp("127.0.0.1:0".parse().unwrap()));
        assert_eq!(ok("ptcp:6640:[::1]"), Remote::PTcp("[::1]:6640".parse().unwrap()));
        assert_eq!(ok("punix:/tmp/m.sock"), Remote::PUnix("/tmp/m.sock".into()));
        assert!(ok("punix:/tmp/m.sock").is_passive());
        assert_eq!(ok("pssl:6640"), Remote::PSsl("0.0.0.0:6640".parse().unwrap()));
        assert_eq!(ok("pssl:0:127.0.0.1"), Remote::PSsl("127.0.0.1:0".parse().unwrap()));
        assert_eq!(ok("pssl:7:[::1]"), Remote::PSsl("[::1]:7".parse().unwrap()));
        assert!(ok("pssl:").is_passive() && ok("pssl:").is_tls());
    }

    #[test]
    fn display_parses_back() {
        for s in [
            "tcp:192.0.2.7:6641",
            "tcp:[::1]:7000",
            "unix:/a b",
            "ptcp:1:127.0.0.1",
            "ptcp:2:[::1]",
            "punix:/p",
            "ssl:192.0.2.7:6641",
            "ssl:[::1]:7000",
            "pssl:1:127.0.0.1",
            "pssl:2:[::1]",
        ] {
            let r = ok(s);
            assert_eq!(ok(&r.to_string()), r, "{s}");
        }
    }

    #[test]
    fn errors_name_the_bad_part() {
        let cases = [
            ("tcp:192.0.2.7:http", "bad port \"http\""),
            ("tcp:192.0.2.7:70000", "bad port \"70000\""),
            ("tcp:host.example:6640", "bad IP address \"host.example\""),
            ("tcp:", "bad IP address \"\""),
            ("ptcp:6640:nope", "bad IP address \"nope\""),
            ("ptcp:x", "bad port \"x\""),
            ("unix:", "unix: needs a socket path"),
            ("punix:", "punix: needs a socket path"),
            ("ssl:192.0.2.7:https", "bad port \"https\""),
            ("ssl:host.example", "bad IP address \"host.example\""),
            ("pssl:6640:nope", "bad IP address \"nope\""),
            ("udp:1.2.3.4:5", "unknown scheme \"udp\""),
            ("/run/db.sock", "unknown scheme \"/run/db.sock\""),
        ];
        for (s, want) in cases {
            let e = s.parse::<Remote>().unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
            assert!(e.contains(&format!("{s:?}")), "{s}: names the remote: {e}");
        }
    }
}
