//! Byte-level helpers shared by every OpenFlow structure: a bounds-checked reader that knows its
//! absolute offset, and a guard that patches a length field once the body has been written.

use bytes::{BufMut, BytesMut};

use super::DecodeError;

/// A bounds-checked cursor over a message. Every read either succeeds or returns
/// [`DecodeError::Truncated`] naming what was being read and where.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data[0]` within the outermost message, for error reports.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole message.
    #[inline]
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0, base: 0 }
    }

    /// Absolute offset of the next byte to be read.
    #[inline]
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes left to read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// True when every byte has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    #[inline]
    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    #[inline]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.truncated(n, what));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[cold]
    #[inline(never)]
    fn truncated(&self, n: usize, what: &'static str) -> DecodeError {
        DecodeError::Truncated { what, offset: self.offset(), need: n, have: self.remaining() }
    }

    /// Reads `n` bytes.
    #[inline]
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        self.take(n, what)
    }

    /// Reads a fixed-size array.
    #[inline]
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Borrows the next `N` bytes as an array when that many are left (consuming them), for
    /// fixed layouts decoded in one step; `None` (consuming nothing) otherwise.
    #[inline(always)]
    pub fn fixed<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let a: &'a [u8; N] = self.data.get(self.pos..)?.first_chunk::<N>()?;
        self.pos += N;
        Some(a)
    }

    /// Moves past `n` bytes already looked at through [`Reader::rest`] (at most what is left).
    #[inline(always)]
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.data.len());
    }

    /// Skips `n` bytes (padding).
    #[inline]
    pub fn skip(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.take(n, what).map(|_| ())
    }

    /// Reads one byte.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a big-endian u16.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u32.
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u64.
    #[inline]
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// Splits off a sub-reader over the next `n` bytes, which keeps absolute offsets.
    #[inline]
    pub fn sub(&mut self, n: usize, what: &'static str) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let data = self.take(n, what)?;
        Ok(Reader { data, pos: 0, base })
    }

    /// Reads a length field (which counts from `start_offset`, the absolute offset where the
    /// structure began) and returns a sub-reader over the rest of the structure. Rejects lengths
    /// shorter than `min` or longer than what is left.
    #[inline]
    pub fn sub_to_len(
        &mut self,
        start_offset: usize,
        len: usize,
        min: usize,
        what: &'static str,
    ) -> Result<Reader<'a>, DecodeError> {
        let consumed = self.offset() - start_offset;
        if len < min.max(consumed) {
            return Err(DecodeError::BadLength { what, offset: start_offset, len });
        }
        let body = len - consumed;
        if body > self.remaining() {
            return Err(DecodeError::Truncated {
                what,
                offset: self.offset(),
                need: body,
                have: self.remaining(),
            });
        }
        self.sub(body, what)
    }

    /// Reads a NUL-padded fixed-width string (as in `ofp_port.name`). Like Open vSwitch, keeps
    /// at most `n - 1` bytes (the last is the terminator); bytes that are not UTF-8 become
    /// U+FFFD, and the text is cut back to `n - 1` bytes at a character boundary so that it
    /// is emitted as read.
    #[inline]
    pub fn fixed_str(&mut self, n: usize, what: &'static str) -> Result<String, DecodeError> {
        let s = self.take(n, what)?;
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        let mut text = String::from_utf8_lossy(&s[..end]).into_owned();
        text.truncate(floor_char_boundary(&text, n.saturating_sub(1)));
        Ok(text)
    }
}

/// How many structures with a 16-bit length at byte 2 (actions, instructions, buckets...) `data`
/// holds, counting until a length is below `min` or overruns `data`: the exact capacity for a
/// well-formed list, and never more than `data.len() / min`.
#[inline]
pub fn count_structs(data: &[u8], min: usize) -> usize {
    let (mut n, mut at) = (0, 0);
    while let (Some(&hi), Some(&lo)) = (data.get(at + 2), data.get(at + 3)) {
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < min.max(1) || at + len > data.len() {
            break;
        }
        at += len;
        n += 1;
    }
    n
}

/// The largest character boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    (0..=at.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// Writes a NUL-padded fixed-width string, truncated (at a character boundary) to leave at
/// least one NUL.
#[inline]
pub fn put_fixed_str(buf: &mut BytesMut, s: &str, n: usize) {
    let b = s.as_bytes();
    let k = floor_char_boundary(s, n.saturating_sub(1));
    buf.put_slice(&b[..k]);
    buf.put_bytes(0, n - k);
}

/// Number of zero bytes that pad `len` up to a multiple of 8.
#[inline]
pub fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// A writer that stores straight into a byte buffer grown once up front by a size hint: each
/// store is one bounds check, where `BufMut` on `BytesMut` checks capacity and length twice. The
/// hint only sizes the buffer (a short hint costs a regrow, never a wrong byte); bytes skipped
/// with [`Writer::zeros`] are zero; the buffer is cut back to what was written when the writer
/// is dropped.
pub struct Writer<'a> {
    buf: &'a mut BytesMut,
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`, which expects about `hint` bytes.
    #[inline]
    pub fn new(buf: &'a mut BytesMut, hint: usize) -> Self {
        let pos = buf.len();
        buf.resize(pos + hint, 0);
        Writer { buf, pos }
    }

    /// Offset in the buffer of the next byte to be written.
    #[inline(always)]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Reserves the next `n` bytes (zero) and hands them out to be filled.
    #[inline(always)]
    pub fn room(&mut self, n: usize) -> &mut [u8] {
        let at = self.pos;
        let end = at + n;
        if end > self.buf.len() {
            self.grow(end);
        }
        self.pos = end;
        &mut self.buf[at..end]
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, end: usize) {
        let want = end.max(self.buf.len() * 2).max(64);
        self.buf.resize(want, 0);
    }

    /// Writes a fixed-size array.
    #[inline(always)]
    pub fn array<const N: usize>(&mut self, a: [u8; N]) {
        self.room(N).copy_from_slice(&a);
    }

    /// Writes one byte.
    #[inline(always)]
    pub fn u8(&mut self, v: u8) {
        self.array([v]);
    }

    /// Writes a big-endian u16.
    #[inline(always)]
    pub fn u16(&mut self, v: u16) {
        self.array(v.to_be_bytes());
    }

    /// Writes a big-endian u32.
    #[inline(always)]
    pub fn u32(&mut self, v: u32) {
        self.array(v.to_be_bytes());
    }

    /// Writes a big-endian u64.
    #[inline(always)]
    pub fn u64(&mut self, v: u64) {
        self.array(v.to_be_bytes());
    }

    /// Writes bytes.
    #[inline]
    pub fn slice(&mut self, s: &[u8]) {
        self.room(s.len()).copy_from_slice(s);
    }

    /// Writes `n` zero bytes (the room is zero already).
    #[inline(always)]
    pub fn zeros(&mut self, n: usize) {
        self.room(n);
    }

    /// Starts a structure here whose u16 length field sits `field_at` bytes into it.
    #[inline(always)]
    pub fn guard(&self, field_at: usize) -> WriterGuard {
        WriterGuard { start: self.pos, field: self.pos + field_at }
    }

    /// Emits through the `BytesMut` path (for the structures that have only that one): the
    /// writer hands over the buffer, then takes it back at its new end.
    #[inline]
    pub fn with_buf(&mut self, f: impl FnOnce(&mut BytesMut)) {
        self.buf.truncate(self.pos);
        f(self.buf);
        self.pos = self.buf.len();
    }
}

impl Drop for Writer<'_> {
    #[inline]
    fn drop(&mut self) {
        self.buf.truncate(self.pos);
    }
}

/// [`LengthGuard`] for a [`Writer`]: patches a u16 length field once the structure is written.
#[must_use = "a length guard must be finished"]
pub struct WriterGuard {
    start: usize,
    field: usize,
}

impl WriterGuard {
    /// Patches the length field with the bytes written since the guard and returns that length.
    #[inline(always)]
    pub fn finish(self, w: &mut Writer<'_>) -> usize {
        let len = w.pos - self.start;
        let v = u16::try_from(len).unwrap_or(u16::MAX);
        w.buf[self.field..self.field + 2].copy_from_slice(&v.to_be_bytes());
        len
    }

    /// Like `finish`, then pads with zeros to a multiple of 8 not counted in the length.
    #[inline(always)]
    pub fn finish_padded(self, w: &mut Writer<'_>) -> usize {
        let len = self.finish(w);
        w.zeros(pad8(len));
        len
    }

    /// Pads to a multiple of 8 first and counts the padding in the length.
    #[inline(always)]
    pub fn pad_and_finish(self, w: &mut Writer<'_>) -> usize {
        let len = w.pos - self.start;
        w.zeros(pad8(len));
        self.finish(w)
    }
}

/// Patches a big-endian u16 length field once the structure it measures has been written, so
/// that no length is ever computed by hand twice.
#[must_use = "a length guard must be finished"]
pub struct LengthGuard {
    start: usize,
    field: usize,
}

impl LengthGuard {
    /// Starts a structure at the current end of `buf` whose u16 length field sits `field_at`
    /// bytes into it. The caller writes the field itself (any value); `finish` overwrites it.
    #[inline]
    pub fn start(buf: &BytesMut, field_at: usize) -> Self {
        LengthGuard { start: buf.len(), field: buf.len() + field_at }
    }

    /// Patches the length field with the bytes written since `start` and returns that length.
    /// Structures longer than 65535 bytes cannot be expressed; callers keep them below.
    #[inline]
    pub fn finish(self, buf: &mut BytesMut) -> usize {
        let len = buf.len() - self.start;
        let v = u16::try_from(len).unwrap_or(u16::MAX);
        buf[self.field..self.field + 2].copy_from_slice(&v.to_be_bytes());
        len
    }

    /// Like `finish`, then pads the structure with zeros to a multiple of 8 (the padding is not
    /// counted in the length field, as for `ofp_match`).
    #[inline]
    pub fn finish_padded(self, buf: &mut BytesMut) -> usize {
        let len = self.finish(buf);
        buf.put_bytes(0, pad8(len));
        len
    }

    /// Pads to a multiple of 8 first and counts the padding in the length (as for actions).
    #[inline]
    pub fn pad_and_finish(self, buf: &mut BytesMut) -> usize {
        let len = buf.len() - self.start;
        buf.put_bytes(0, pad8(len));
        self.finish(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_offset_of_truncation() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").unwrap(), 0x0102);
        let err = r.u16("b").unwrap_err();
        assert_eq!(err, DecodeError::Truncated { what: "b", offset: 2, need: 2, have: 1 });
    }

    fn fixed_round_trip(field: &[u8]) -> (String, String) {
        let first = Reader::new(field).fixed_str(field.len(), "name").unwrap();
        let mut b = BytesMut::new();
        put_fixed_str(&mut b, &first, field.len());
        assert_eq!(b.len(), field.len());
        (first, Reader::new(&b).fixed_str(field.len(), "name").unwrap())
    }

    #[test]
    fn fixed_str_that_grows_when_decoded_round_trips() {
        // Found by fuzzing: six invalid bytes became six 3-byte U+FFFD, which emit cut to five.
        let mut field = [0xffu8; 16];
        field[6] = 0;
        let (first, again) = fixed_round_trip(&field);
        assert_eq!(first, again);
        assert_eq!(first, "\u{fffd}".repeat(5));
    }

    #[test]
    fn fixed_str_without_terminator_keeps_all_but_the_last_byte() {
        let (first, again) = fixed_round_trip(b"abcdefghijklmnop");
        assert_eq!(first, "abcdefghijklmno");
        assert_eq!(again, first);
    }

    #[test]
    fn put_fixed_str_cuts_at_a_character_boundary() {
        let mut b = BytesMut::new();
        put_fixed_str(&mut b, "\u{e9}\u{e9}\u{e9}", 6);
        assert_eq!(&b[..], &[0xc3, 0xa9, 0xc3, 0xa9, 0, 0]);
    }

    #[test]
    fn guard_patches_length() {
        let mut b = BytesMut::new();
        b.put_u8(9);
        let g = LengthGuard::start(&b, 2);
        b.put_u16(0xdead);
        b.put_u16(0);
        b.put_u8(7);
        assert_eq!(g.finish_padded(&mut b), 5);
        assert_eq!(&b[..], &[9, 0xde, 0xad, 0, 5, 7, 0, 0, 0]);
    }
}
