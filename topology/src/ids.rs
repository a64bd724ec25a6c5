//! Identifiers of the graph: hypervisors, OVSDB rows, generations, switch ports, caller time.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use periscope_codec::openflow::{Dpid, PortNo};
use serde::{Serialize, Serializer};

/// The name the controller knows a hypervisor's OVSDB connection by.
///
/// Shared, not copied: every row reference, location and index entry of the hypervisor holds
/// the same text, so cloning one is a reference count increment.
#[derive(Debug, Clone, Eq, Default)]
pub struct HypervisorId(Arc<str>);

impl std::hash::Hash for HypervisorId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        // As the text: equal ids (shared or not) hash alike.
        self.0.hash(h);
    }
}

impl PartialEq for HypervisorId {
    fn eq(&self, other: &Self) -> bool {
        // The rows of one hypervisor mostly share one allocation.
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Ord for HypervisorId {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for HypervisorId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl HypervisorId {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for HypervisorId {
    fn from(s: &str) -> Self {
        HypervisorId(Arc::from(s))
    }
}

impl From<String> for HypervisorId {
    fn from(s: String) -> Self {
        HypervisorId(Arc::from(s))
    }
}

impl fmt::Display for HypervisorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for HypervisorId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// An OVSDB row uuid, compared, ordered, printed and serialized as the text OVSDB sends
/// (`"uuid"` atom).
///
/// A canonical lowercase uuid (what OVSDB sends) is held as its 128 bits, so that rows are keyed,
/// hashed and compared without touching the heap; any other text (tests, hand-made rows) is held
/// as shared text. The order is the order of the text either way: the canonical form has fixed
/// width and its digits sort as their values.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uuid(UuidRepr);

/// The two forms of a [`Uuid`]; `Text` never holds a canonical lowercase uuid, so that each
/// text has exactly one form (and `==`/`Hash` can compare the forms directly).
#[derive(Clone, PartialEq, Eq, Hash)]
enum UuidRepr {
    Bits(u128),
    Text(Arc<str>),
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The canonical 8-4-4-4-12 lowercase text of `bits`.
fn uuid_text(bits: u128) -> [u8; 36] {
    let mut out = [b'-'; 36];
    let mut j = 0;
    for (i, b) in bits.to_be_bytes().into_iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            j += 1;
        }
        out[j] = HEX[usize::from(b >> 4)];
        out[j + 1] = HEX[usize::from(b & 0xf)];
        j += 2;
    }
    out
}

/// The bits of a canonical lowercase uuid text, or `None` for any other text.
fn uuid_bits(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

impl Uuid {
    /// The uuid whose canonical text is that of `bits` (an OVSDB row uuid).
    pub const fn from_bits(bits: u128) -> Uuid {
        Uuid(UuidRepr::Bits(bits))
    }

    /// The 128 bits, when the uuid is a canonical one.
    pub fn bits(&self) -> Option<u128> {
        match &self.0 {
            UuidRepr::Bits(b) => Some(*b),
            UuidRepr::Text(_) => None,
        }
    }

    /// Calls `f` with the text, without allocating.
    fn with_text<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match &self.0 {
            UuidRepr::Bits(b) => {
                let text = uuid_text(*b);
                // Only hex digits and dashes were written.
                f(std::str::from_utf8(&text).unwrap_or_default())
            }
            UuidRepr::Text(t) => f(t),
        }
    }
}

impl Default for Uuid {
    /// The empty text, which sorts before every other uuid.
    fn default() -> Self {
        Uuid(UuidRepr::Text(Arc::from("")))
    }
}

impl From<&str> for Uuid {
    fn from(s: &str) -> Self {
        match uuid_bits(s) {
            Some(b) => Uuid(UuidRepr::Bits(b)),
            None => Uuid(UuidRepr::Text(Arc::from(s))),
        }
    }
}

impl From<String> for Uuid {
    fn from(s: String) -> Self {
        match uuid_bits(&s) {
            Some(b) => Uuid(UuidRepr::Bits(b)),
            None => Uuid(UuidRepr::Text(Arc::from(s))),
        }
    }
}

impl From<periscope_codec::ovsdb::Uuid> for Uuid {
    fn from(u: periscope_codec::ovsdb::Uuid) -> Self {
        Uuid::from_bits(u.0)
    }
}

impl Ord for Uuid {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (UuidRepr::Bits(a), UuidRepr::Bits(b)) => a.cmp(b),
            (UuidRepr::Text(a), UuidRepr::Text(b)) => a.cmp(b),
            _ => self.with_text(|a| other.with_text(|b| a.cmp(b))),
        }
    }
}

impl PartialOrd for Uuid {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for Uuid {
    fn eq(&self, other: &str) -> bool {
        self.with_text(|t| t == other)
    }
}

impl PartialEq<&str> for Uuid {
    fn eq(&self, other: &&str) -> bool {
        self.with_text(|t| t == *other)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|t| f.write_str(t))
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|t| fmt::Debug::fmt(t, f))
    }
}

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_text(|t| s.serialize_str(t))
    }
}

/// A row of one hypervisor's database (bridge, port or interface): uuids are only unique per database.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct RowRef {
    /// The hypervisor whose database holds the row.
    pub hypervisor: HypervisorId,
    /// The row's uuid in that database.
    pub uuid: Uuid,
}

impl RowRef {
    /// A reference to row `uuid` of `hypervisor`'s database.
    pub fn new(hypervisor: impl Into<HypervisorId>, uuid: impl Into<Uuid>) -> RowRef {
        RowRef { hypervisor: hypervisor.into(), uuid: uuid.into() }
    }
}

impl fmt::Display for RowRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.hypervisor, self.uuid)
    }
}

/// The topology's version: bumped once by every change that emits events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct Generation(pub u64);

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Milliseconds on the caller's monotonic clock; the topology never reads a clock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
#[serde(transparent)]
pub struct Millis(pub u64);

/// One OpenFlow port of one switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Default)]
pub struct SwitchPort {
    /// The switch.
    pub dpid: Dpid,
    /// The port on that switch.
    pub port: PortNo,
}

impl fmt::Display for SwitchPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.dpid, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};

    fn hash(u: &Uuid) -> u64 {
        let mut h = DefaultHasher::new();
        u.hash(&mut h);
        h.finish()
    }

    #[test]
    fn canonical_uuids_are_held_as_bits_and_keep_their_text() {
        let text = "0cfe681f-8125-4f87-8b33-ccd7305acd27";
        let u = Uuid::from(text);
        assert_eq!(u.bits(), Some(0x0cfe681f_8125_4f87_8b33_ccd7305acd27));
        assert_eq!(u.to_string(), text);
        assert_eq!(format!("{u:?}"), format!("{text:?}"));
        assert_eq!(serde_json::to_string(&u).unwrap(), format!("{text:?}"));
        assert_eq!(u, Uuid::from(periscope_codec::ovsdb::Uuid(u.bits().unwrap())));
        // Any other text is kept as it is.
        for other in ["i3", "", "0CFE681F-8125-4F87-8B33-CCD7305ACD27", "0cfe681f_8125"] {
            let o = Uuid::from(other);
            assert_eq!((o.bits(), o.to_string()), (None, other.to_owned()));
        }
    }

    #[test]
    fn hypervisor_ids_compare_by_text() {
        let (a, b) = (HypervisorId::from("hv1"), HypervisorId::from(String::from("hv1")));
        assert_eq!(a, b);
        assert_eq!(a.cmp(&HypervisorId::from("hv10")), "hv1".cmp("hv10"));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"hv1\"");
    }

    proptest::proptest! {
        #[test]
        fn uuid_order_equality_and_hash_follow_the_text(
            a in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-fA-F-]{0,40}",
            b in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-fA-F-]{0,40}",
        ) {
            let (ua, ub) = (Uuid::from(a.as_str()), Uuid::from(b.clone()));
            proptest::prop_assert_eq!(ua.cmp(&ub), a.cmp(&b));
            proptest::prop_assert_eq!(ua == ub, a == b);
            proptest::prop_assert_eq!(ua.to_string(), a.clone());
            if a == b {
                proptest::prop_assert_eq!(hash(&ua), hash(&ub));
            }
            let (ra, rb) = (RowRef::new("hv", a.as_str()), RowRef::new("hv", b.as_str()));
            proptest::prop_assert_eq!(ra.cmp(&rb), a.cmp(&b));
        }
    }
}
