//! JSON-RPC 1.0 over a byte stream (RFC 7047 §4): messages are JSON objects sent back to back
//! with no length prefix. [`JsonStream`] splits the stream into values; [`Message`] types them.
//!
//! ```text
//! request:      {"method": <string>, "params": [<value>*], "id": <non-null value>}
//! response:     {"result": <value>, "error": null | <value>, "id": <same id>}
//! notification: {"method": <string>, "params": [<value>*], "id": null}
//! ```

use std::collections::VecDeque;
use std::ops::Range;

use serde_json::{Map, Value};

use super::error::{DecodeError, Loc};

/// Default largest message a [`JsonStream`] accepts (64 MiB; a 10,000-port monitor reply is
/// about 5 MB).
pub const DEFAULT_MAX_MESSAGE: usize = 64 << 20;

/// Splits a byte stream into top-level JSON values (objects or arrays), whatever the chunking.
///
/// Feed bytes with [`JsonStream::push`], then take values with [`JsonStream::next_value`] or
/// [`JsonStream::next_message`] until `None`. The scanner tracks only nesting depth and string
/// state, so a value split anywhere (inside a string, an escape or a UTF-8 sequence) is found
/// once its last byte arrives; each complete value is then parsed by `serde_json`. A message
/// longer than the configured maximum is an error as soon as that many bytes are buffered.
///
/// Framing errors (bytes other than whitespace, `{` or `[` between values; an over-long
/// message) lose the message boundaries, so they stick: every later call returns the same
/// error. A complete value that is not valid JSON is reported once and skipped.
#[derive(Debug, Clone)]
pub struct JsonStream {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Next byte of `buf` to scan.
    pos: usize,
    /// Start in `buf` of the value being scanned, if one has begun.
    start: Option<usize>,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Complete values not yet taken.
    ready: VecDeque<Range<usize>>,
    max: usize,
    failed: Option<DecodeError>,
}

impl Default for JsonStream {
    fn default() -> Self {
        JsonStream::new(DEFAULT_MAX_MESSAGE)
    }
}

impl JsonStream {
    /// A stream that refuses messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        JsonStream {
            buf: Vec::new(),
            base: 0,
            pos: 0,
            start: None,
            depth: 0,
            in_string: false,
            escape: false,
            ready: VecDeque::new(),
            max: max_message,
            failed: None,
        }
    }

    /// Bytes held: values not yet taken plus the incomplete one.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Total bytes consumed from the stream so far (offset of the next byte to push).
    pub fn offset(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Appends bytes received from the peer and finds the values they complete. Take the
    /// values after each push: the buffer only holds what has not been taken.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(bytes);
        self.scan().inspect_err(|e| self.failed = Some(e.clone()))
    }

    fn scan(&mut self) -> Result<(), DecodeError> {
        let mut i = self.pos;
        while i < self.buf.len() {
            let Some(start) = self.start else {
                match self.buf[i] {
                    b' ' | b'\t' | b'\n' | b'\r' => {}
                    b'{' | b'[' => {
                        self.start = Some(i);
                        self.depth = 1;
                    }
                    b => {
                        return Err(DecodeError::Syntax {
                            offset: self.base + i as u64,
                            detail: format!(
                                "expected '{{' or '[' to start a message, found byte {b:#04x}"
                            ),
                        });
                    }
                }
                i += 1;
                continue;
            };
            let b = self.buf[i];
            i += 1;
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => self.depth -= 1,
                    _ => {}
                }
            }
            if i - start > self.max {
                return Err(DecodeError::TooLong {
                    offset: self.base + start as u64,
                    max: self.max,
                });
            }
            if self.depth == 0 {
                self.ready.push_back(start..i);
                self.start = None;
            }
        }
        self.pos = i;
        if self.ready.is_empty() {
            self.compact();
        }
        Ok(())
    }

    /// The next complete value, `Ok(None)` if more bytes are needed.
    pub fn next_value(&mut self) -> Result<Option<Value>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let Some(range) = self.ready.pop_front() else {
            return Ok(None);
        };
        let offset = self.base + range.start as u64;
        let parsed = serde_json::from_slice::<Value>(&self.buf[range]);
        if self.ready.is_empty() {
            self.compact();
        }
        parsed.map(Some).map_err(|e| DecodeError::Syntax {
            offset,
            detail: format!("{e} (line/column within the message)"),
        })
    }

    /// The next complete message, typed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        self.next_value()?.map(Message::from_json).transpose()
    }

    /// Drops taken bytes, keeping only the value being scanned.
    fn compact(&mut self) {
        let keep = self.start.unwrap_or(self.pos);
        if keep == 0 {
            return;
        }
        self.buf.drain(..keep);
        self.base += keep as u64;
        self.pos -= keep;
        if let Some(s) = &mut self.start {
            *s -= keep;
        }
    }
}

/// A JSON-RPC request: a method call that expects a [`Response`] with the same id.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id, any non-null JSON value.
    pub id: Value,
    /// The method name.
    pub method: String,
    /// The parameters.
    pub params: Vec<Value>,
}

/// A JSON-RPC response to a [`Request`].
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request answered.
    pub id: Value,
    /// The result (`null` when `error` is set).
    pub result: Value,
    /// The error, when the request failed.
    pub error: Option<Value>,
}

/// A JSON-RPC notification: a method call with id `null`, never answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The parameters.
    pub params: Vec<Value>,
}

/// Any JSON-RPC 1.0 message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A method call awaiting a response.
    Request(Request),
    /// The answer to a request.
    Response(Response),
    /// A method call without response.
    Notification(Notification),
}

impl Response {
    /// The result, or the error value if the request failed.
    pub fn into_result(self) -> Result<Value, Value> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.result),
        }
    }

    /// A successful response.
    pub fn ok(id: Value, result: Value) -> Self {
        Response { id, result, error: None }
    }
}

impl Request {
    /// The response answering an `echo` request: its params, unchanged.
    pub fn echo_reply(&self) -> Response {
        Response::ok(self.id.clone(), Value::Array(self.params.clone()))
    }
}

impl Message {
    /// Types a JSON value as a message. Takes the value so that large results are moved, not
    /// copied.
    pub fn from_json(v: Value) -> Result<Message, DecodeError> {
        let loc = Loc::Root("message");
        let Value::Object(mut o) = v else {
            return Err(loc.error("a JSON-RPC object", &v));
        };
        let id = o.remove("id").unwrap_or(Value::Null);
        if let Some(m) = o.remove("method") {
            let Value::String(method) = m else {
                return Err(loc.key("method").error("a string", &m));
            };
            let params = match o.remove("params") {
                Some(Value::Array(a)) => a,
                None | Some(Value::Null) => Vec::new(),
                Some(p) => return Err(loc.key("params").error("an array", &p)),
            };
            return Ok(if id.is_null() {
                Message::Notification(Notification { method, params })
            } else {
                Message::Request(Request { id, method, params })
            });
        }
        if o.contains_key("result") || o.contains_key("error") {
            let result = o.remove("result").unwrap_or(Value::Null);
            let error = o.remove("error").filter(|e| !e.is_null());
            return Ok(Message::Response(Response { id, result, error }));
        }
        Err(loc.error(
            "a request, response or notification (\"method\" or \"result\")",
            &Value::Object(o),
        ))
    }

    /// The JSON form of the message.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        match self {
            Message::Request(r) => {
                o.insert("method".into(), r.method.clone().into());
                o.insert("params".into(), Value::Array(r.params.clone()));
                o.insert("id".into(), r.id.clone());
            }
            Message::Response(r) => {
                o.insert("result".into(), r.result.clone());
                o.insert("error".into(), r.error.clone().unwrap_or(Value::Null));
                o.insert("id".into(), r.id.clone());
            }
            Message::Notification(n) => {
                o.insert("method".into(), n.method.clone().into());
                o.insert("params".into(), Value::Array(n.params.clone()));
                o.insert("id".into(), Value::Null);
            }
        }
        Value::Object(o)
    }

    /// Appends the message's bytes (compact JSON, no separator needed) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_json().to_string().as_bytes());
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Self {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Self {
        Message::Response(r)
    }
}

impl From<Notification> for Message {
    fn from(n: Notification) -> Self {
        Message::Notification(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(s: &mut JsonStream) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = s.next_value().unwrap() {
            out.push(v);
        }
        out
    }

    #[test]
    fn back_to_back_objects_split_bytewise() {
        let text = r#"{"a":"}{\"","b":[1,{"c":"]"}]} [2] {"u":"é€😀"}"#;
        let want: Vec<Value> =
            vec![json!({"a": "}{\"", "b": [1, {"c": "]"}]}), json!([2]), json!({"u": "é€😀"})];
        for split in 0..=text.len() {
            let mut s = JsonStream::new(1024);
            let mut got = Vec::new();
            for chunk in [&text.as_bytes()[..split], &text.as_bytes()[split..]] {
                s.push(chunk).unwrap();
                got.extend(all(&mut s));
            }
            assert_eq!(got, want, "split at {split}");
        }
        let mut s = JsonStream::new(1024);
        let mut got = Vec::new();
        for b in text.as_bytes() {
            s.push(std::slice::from_ref(b)).unwrap();
            got.extend(all(&mut s));
        }
        assert_eq!(got, want);
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.offset(), text.len() as u64);
    }

    #[test]
    fn escaped_backslash_before_quote_ends_string() {
        let mut s = JsonStream::new(100);
        s.push(br#"{"a":"x\\"}{"b":1}"#).unwrap();
        assert_eq!(all(&mut s), vec![json!({"a": "x\\"}), json!({"b": 1})]);
    }

    #[test]
    fn too_long_message_is_an_error_and_sticks() {
        let mut s = JsonStream::new(16);
        s.push(br#"{"a":1} "#).unwrap();
        s.push(br#"{"long":"0123456"#).unwrap();
        let e = s.push(b"789\"}").unwrap_err();
        assert_eq!(e, DecodeError::TooLong { offset: 8, max: 16 });
        assert_eq!(s.next_value().unwrap_err(), e);
        assert_eq!(s.push(b"{}").unwrap_err(), e);
    }

    #[test]
    fn exactly_max_is_accepted() {
        let mut s = JsonStream::new(9);
        s.push(br#"{"a":"b"}"#).unwrap();
        assert_eq!(all(&mut s), vec![json!({"a": "b"})]);
    }

    #[test]
    fn garbage_between_messages_is_a_syntax_error() {
        let mut s = JsonStream::new(100);
        let e = s.push(b"{} x").unwrap_err();
        assert!(matches!(e, DecodeError::Syntax { offset: 3, .. }), "{e}");
    }

    #[test]
    fn invalid_json_inside_a_balanced_value_is_reported_once() {
        let mut s = JsonStream::new(100);
        s.push(b"{\"a\" 1}\n{\"b\":2}").unwrap();
        let e = s.next_value().unwrap_err();
        assert!(matches!(e, DecodeError::Syntax { offset: 0, .. }), "{e}");
        assert_eq!(s.next_value().unwrap(), Some(json!({"b": 2})));
        // Invalid UTF-8 in a string.
        s.push(b"{\"c\":\"\xff\"}").unwrap();
        assert!(s.next_value().is_err());
    }

    #[test]
    fn messages_are_typed() {
        let req = Message::from_json(json!({"method": "echo", "params": [1], "id": "x"})).unwrap();
        assert_eq!(
            req,
            Message::Request(Request {
                id: json!("x"),
                method: "echo".into(),
                params: vec![json!(1)]
            })
        );
        let Message::Request(r) = &req else { unreachable!() };
        assert_eq!(r.echo_reply(), Response::ok(json!("x"), json!([1])));
        let n = Message::from_json(json!({"method": "update", "params": [null, {}], "id": null}))
            .unwrap();
        assert!(matches!(n, Message::Notification(ref n) if n.method == "update"));
        let ok = Message::from_json(json!({"result": [], "error": null, "id": 7})).unwrap();
        assert_eq!(ok, Message::Response(Response::ok(json!(7), json!([]))));
        let err = Message::from_json(json!({"result": null, "error": "unknown method", "id": 8}))
            .unwrap();
        let Message::Response(r) = err else { unreachable!() };
        assert_eq!(r.into_result(), Err(json!("unknown method")));
        for m in [req, n, ok] {
            let mut out = Vec::new();
            m.emit(&mut out);
            let back: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(Message::from_json(back).unwrap(), m);
        }
    }

    #[test]
    fn malformed_messages_are_errors() {
        assert!(Message::from_json(json!([1])).is_err());
        assert!(Message::from_json(json!({"id": 1})).is_err());
        let e = Message::from_json(json!({"method": 5, "id": 1})).unwrap_err();
        assert_eq!(e.to_string(), "message.method: expected a string, found 5");
        assert!(Message::from_json(json!({"method": "x", "params": {}, "id": 1})).is_err());
    }
}
