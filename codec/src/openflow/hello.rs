//! OFPT_HELLO with its elements (spec 1.3.5 §7.5.1).
//!
//! ```text
//! struct ofp_hello { struct ofp_header header; struct ofp_hello_elem_header elements[0]; };
//! struct ofp_hello_elem_versionbitmap { uint16_t type; uint16_t length; uint32_t bitmaps[0]; };
//! ```

use bytes::{BufMut, BytesMut};
use serde::Serialize;

use super::wire::{LengthGuard, Reader};
use super::DecodeError;

/// OFPHET_VERSIONBITMAP.
const HELLO_ELEM_VERSIONBITMAP: u16 = 1;

/// OFPT_HELLO: the versions a peer speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Hello {
    /// Hello elements in wire order.
    pub elements: Vec<HelloElement>,
}

/// One hello element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum HelloElement {
    /// OFPHET_VERSIONBITMAP: bit `n` of the bitmap set means version `n` is supported.
    VersionBitmap(Vec<u32>),
    /// An element type this codec does not know.
    Unknown {
        /// Element type.
        elem_type: u16,
        /// Element body after its 4-byte header, padding excluded.
        data: Vec<u8>,
    },
}

impl Hello {
    /// A hello that offers exactly the given wire versions.
    pub fn with_versions(versions: &[u8]) -> Self {
        let max = versions.iter().copied().max().unwrap_or(0) as usize;
        let mut bitmaps = vec![0u32; max / 32 + 1];
        for &v in versions {
            bitmaps[v as usize / 32] |= 1 << (v % 32);
        }
        Hello { elements: vec![HelloElement::VersionBitmap(bitmaps)] }
    }

    /// Whether the peer offers wire version `v`, given its header version `header_version`.
    /// Without a version bitmap, a peer supports every version up to its header version
    /// (spec §6.3.1).
    pub fn supports(&self, header_version: u8, v: u8) -> bool {
        for e in &self.elements {
            if let HelloElement::VersionBitmap(b) = e {
                let word = v as usize / 32;
                return b.get(word).is_some_and(|w| w & (1 << (v % 32)) != 0);
            }
        }
        v <= header_version
    }

    /// Parses the body after the OpenFlow header. Hellos of any version are parsed.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut elements = Vec::new();
        while r.remaining() >= 4 {
            let start = r.offset();
            let elem_type = r.u16("hello element type")?;
            let len = r.u16("hello element length")? as usize;
            let mut body = r.sub_to_len(start, len, 4, "hello element")?;
            match elem_type {
                HELLO_ELEM_VERSIONBITMAP => {
                    if body.remaining() % 4 != 0 {
                        return Err(DecodeError::BadLength {
                            what: "hello version bitmap",
                            offset: start,
                            len,
                        });
                    }
                    let mut words = Vec::with_capacity(body.remaining() / 4);
                    while !body.is_empty() {
                        words.push(body.u32("hello version bitmap")?);
                    }
                    elements.push(HelloElement::VersionBitmap(words));
                }
                _ => elements.push(HelloElement::Unknown { elem_type, data: body.rest().to_vec() }),
            }
            // Elements are padded to 8 bytes; tolerate peers that omit the final padding.
            let pad = super::wire::pad8(len).min(r.remaining());
            r.skip(pad, "hello element padding")?;
        }
        // Older peers may send trailing bytes shorter than an element header; ignore them.
        let rest = r.remaining();
        r.skip(rest, "hello trailer")?;
        Ok(Hello { elements })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        for e in &self.elements {
            let g = LengthGuard::start(buf, 2);
            match e {
                HelloElement::VersionBitmap(words) => {
                    buf.put_u16(HELLO_ELEM_VERSIONBITMAP);
                    buf.put_u16(0);
                    for w in words {
                        buf.put_u32(*w);
                    }
                }
                HelloElement::Unknown { elem_type, data } => {
                    buf.put_u16(*elem_type);
                    buf.put_u16(0);
                    buf.put_slice(data);
                }
            }
            g.finish_padded(buf);
        }
    }
}
