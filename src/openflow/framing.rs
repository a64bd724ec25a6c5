//! Framing of OpenFlow messages on a byte stream, as a tokio-util codec.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use periscope_codec::openflow::{frame_len, DecodeError, OfpMessage, HEADER_LEN};

/// Largest message accepted: the 16-bit length field's limit.
pub const MAX_FRAME: usize = u16::MAX as usize;

/// One frame off the wire: parsed, or the raw bytes with the reason they did not parse (the
/// session answers those with an OFPT_ERROR that quotes them).
#[derive(Debug)]
pub enum Frame {
    /// A message that parsed.
    Message(OfpMessage),
    /// A frame with a sane length whose body did not parse.
    Malformed {
        /// The raw frame.
        raw: Vec<u8>,
        /// Why it did not parse.
        error: DecodeError,
    },
}

/// Why the stream itself is unusable.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// A length field below the header size or above the limit: the stream cannot be resynced.
    #[error("bad OpenFlow frame: {0}")]
    BadFrame(DecodeError),
    /// The socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into OpenFlow frames and writes messages back.
#[derive(Debug, Default)]
pub struct OfpCodec;

impl Decoder for OfpCodec {
    type Item = Frame;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        let Some(len) = frame_len(src, MAX_FRAME).map_err(FramingError::BadFrame)? else {
            src.reserve(HEADER_LEN);
            return Ok(None);
        };
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        // Parsed in place: the message copies what it keeps, so the frame is not split off.
        let frame = match OfpMessage::parse(&src[..len]) {
            Ok(m) => Frame::Message(m),
            Err(error) => Frame::Malformed { raw: src[..len].to_vec(), error },
        };
        src.advance(len);
        Ok(Some(frame))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        match self.decode(src)? {
            Some(f) => Ok(Some(f)),
            None => {
                src.advance(src.len());
                Ok(None)
            }
        }
    }
}

impl Encoder<OfpMessage> for OfpCodec {
    type Error = FramingError;

    fn encode(&mut self, item: OfpMessage, dst: &mut BytesMut) -> Result<(), FramingError> {
        item.emit(dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_codec::openflow::{Message, Xid};

    #[test]
    fn splits_back_to_back_messages_at_any_point() {
        let mut wire = BytesMut::new();
        for i in 0..3 {
            OfpMessage::new(Xid(i), Message::EchoRequest(vec![i as u8; i as usize]))
                .emit(&mut wire);
        }
        for cut in 0..wire.len() {
            let mut codec = OfpCodec;
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                got.push(f);
            }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                got.push(f);
            }
            assert_eq!(got.len(), 3, "cut at {cut}");
        }
    }

    #[test]
    fn rejects_short_and_keeps_malformed() {
        let mut codec = OfpCodec;
        let mut buf = BytesMut::from(&[4u8, 0, 0, 4, 0, 0, 0, 1][..]);
        assert!(matches!(codec.decode(&mut buf), Err(FramingError::BadFrame(_))));
        // A FEATURES_REPLY that is too short parses as a frame but not as a message.
        let mut buf = BytesMut::from(&[4u8, 6, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0][..]);
        assert!(matches!(codec.decode(&mut buf), Ok(Some(Frame::Malformed { .. }))));
    }
}
