//! A tiny blocking HTTP/1.1 client for the controller's JSON API, over TCP, HTTPS or the
//! controller's unix socket: one request per connection (`Connection: close`), a bounded
//! response, nothing else.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::tls::ApiClientTls;

/// Largest response accepted.
const MAX_RESPONSE: u64 = 16 << 20;
/// Connect, read and write timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `IP:PORT`.
    Tcp(SocketAddr),
    /// A unix socket (`run` listens on `DATA_DIR/api.sock`).
    Unix(PathBuf),
    /// `IP:PORT` over HTTPS (`run --api-tls`), the server's certificate checked against a CA.
    Https(SocketAddr, ApiClientTls),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Https(a, _) => write!(f, "https://{a}"),
        }
    }
}

/// Why a request got no usable answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// Connecting, sending or receiving failed.
    #[error("{method} {path} on {addr}: {source}")]
    Io {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// Server.
        addr: Endpoint,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The answer is not an HTTP response with a JSON (or empty) body.
    #[error("{method} {path} on {addr}: bad response: {reason}")]
    Response {
        /// Method.
        method: String,
        /// Path.
        path: String,
        /// Server.
        addr: Endpoint,
        /// What is wrong with it.
        reason: String,
    },
}

/// Sends one request with an optional JSON body; returns the status and the JSON body
/// (`Null` when empty).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), HttpError> {
    request_as(addr, None, method, path, body)
}

/// [`request`] with `Authorization: Bearer <token>` when a token is given.
pub fn request_as(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), HttpError> {
    request_to(&Endpoint::Tcp(addr), token, method, path, body)
}

/// [`request_as`] to an API over TCP, HTTPS or a unix socket.
pub fn request_to(
    addr: &Endpoint,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), HttpError> {
    let (status, text) = request_text_to(addr, token, method, path, body)?;
    if text.trim().is_empty() {
        return Ok((status, Value::Null));
    }
    let json = serde_json::from_str(&text).map_err(|e| HttpError::Response {
        method: method.into(),
        path: path.into(),
        addr: addr.clone(),
        reason: format!("body is not JSON: {e}"),
    })?;
    Ok((status, json))
}

/// One request whose answer is text (`GET /metrics`): returns the status and the body.
pub fn request_text_to(
    addr: &Endpoint,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String), HttpError> {
    let io = |source| HttpError::Io {
        method: method.into(),
        path: path.into(),
        addr: addr.clone(),
        source,
    };
    let raw = match addr {
        Endpoint::Tcp(a) => {
            let s = TcpStream::connect_timeout(a, TIMEOUT).map_err(io)?;
            s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
            s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
            exchange(s, &a.to_string(), token, method, path, body).map_err(io)?
        }
        Endpoint::Unix(p) => {
            let s = UnixStream::connect(p).map_err(io)?;
            s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
            s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
            exchange(s, "localhost", token, method, path, body).map_err(io)?
        }
        Endpoint::Https(a, tls) => {
            let s = TcpStream::connect_timeout(a, TIMEOUT).map_err(io)?;
            s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
            s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
            let s = tls.connect(*a, s).map_err(io)?;
            exchange(s, &a.to_string(), token, method, path, body).map_err(io)?
        }
    };
    let bad = |reason| HttpError::Response {
        method: method.into(),
        path: path.into(),
        addr: addr.clone(),
        reason,
    };
    let (status, body) = split_response(&raw).map_err(bad)?;
    let text = String::from_utf8(body).map_err(|_| bad("body is not UTF-8".into()))?;
    Ok((status, text))
}

/// Writes one request on a fresh connection and reads the whole (bounded) response.
fn exchange(
    mut s: impl Read + Write,
    host: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<Vec<u8>> {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    if body.is_some() {
        head.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
    s.write_all(head.as_bytes())?;
    s.write_all(payload.as_bytes())?;
    let mut raw = Vec::new();
    s.take(MAX_RESPONSE).read_to_end(&mut raw)?;
    Ok(raw)
}

/// Splits a complete response into its status and JSON body (`Null` when empty).
pub fn parse_response(raw: &[u8]) -> Result<(u16, Value), String> {
    let (status, body) = split_response(raw)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((status, Value::Null));
    }
    let v = serde_json::from_slice(&body).map_err(|e| format!("body is not JSON: {e}"))?;
    Ok((status, v))
}

/// Splits a complete response into its status and body bytes. Understands `Content-Length`,
/// `chunked` and read-to-close bodies.
fn split_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(format!("bad status line {status_line:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = code.parse().map_err(|_| format!("bad status code {code:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else { continue };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            length = Some(v.parse::<usize>().map_err(|_| format!("bad content-length {v:?}"))?);
        } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n).ok_or(format!("body shorter than content-length {n}"))?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = b.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        b = b.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use serde_json::json;

    use super::*;

    #[test]
    fn parses_length_chunked_and_empty_bodies() {
        let r = b"HTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\n{\"id\":1}";
        assert_eq!(parse_response(r), Ok((201, json!({"id": 1}))));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n";
        assert_eq!(parse_response(r), Ok((200, json!([1, 2]))));
        assert_eq!(parse_response(b"HTTP/1.1 204 No Content\r\n\r\n"), Ok((204, Value::Null)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for r in [
            &b"nonsense"[..],
            b"HTTP/1.1 abc\r\n\r\n",
            b"SMTP 200\r\n\r\n",
            b"HTTP/1.1 200\r\ncontent-length: 99\r\n\r\n{}",
            b"HTTP/1.1 200\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200\r\n\r\n{not json",
        ] {
            assert!(parse_response(r).is_err(), "{:?}", String::from_utf8_lossy(r));
        }
    }

    #[test]
    fn talks_to_a_server() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !String::from_utf8_lossy(&got).contains("{\"a\":1}") {
                let n = s.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").expect("write");
            String::from_utf8_lossy(&got).into_owned()
        });
        let (status, body) =
            request(addr, "POST", "/v1/x", Some(&json!({"a": 1}))).expect("request");
        assert_eq!((status, body), (200, json!({})));
        let seen = server.join().expect("server");
        assert!(seen.starts_with("POST /v1/x HTTP/1.1\r\n"), "{seen}");
        assert!(seen.contains("Content-Length: 7\r\n"), "{seen}");
    }
}
