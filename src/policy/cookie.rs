//! The cookie periscope puts on every flow it installs: it says "periscope's" and which tap the
//! flow serves, so that a reconciliation never touches anything else.
//!
//! ```text
//!  63          48 47    40 39                                   0
//! +--------------+--------+--------------------------------------+
//! |  0x5053 "PS" |  kind  |  owner (tap flow id, or 0 for base)  |
//! +--------------+--------+--------------------------------------+
//! ```

use periscope_codec::openflow::Cookie;

/// The top 16 bits every periscope cookie carries.
pub const MAGIC: u64 = 0x5053 << 48;
/// Mask selecting the magic: flows whose cookie matches `MAGIC` under it are periscope's.
pub const OURS_MASK: u64 = 0xffff << 48;

/// What a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// The base pipeline (table-miss forwarding).
    Base = 1,
    /// A copy of a tap flow's traffic (owner: the tap flow).
    Mirror = 2,
    /// The fan-out of an interface's frames to its tap services.
    Classify = 3,
    /// The same, at a place where the interface is not active yet: its first frame goes to the
    /// controller too.
    Probe = 4,
    /// The LLDP link probes: sent to the controller and nowhere else.
    Discovery = 5,
    /// The delivery of copies arriving through periscope's tunnel ports to a VM collector
    /// (owner: the tap service), and the guard that drops anything else arriving there (0).
    Delivery = 6,
    /// A flow the `learning-switch` app learned: it expires by its idle timeout, and the
    /// reconciler leaves it alone.
    Learned = 7,
}

/// The cookie of a flow of `kind` serving `owner` (40 bits; larger ids are truncated).
pub fn cookie(kind: Kind, owner: u64) -> Cookie {
    Cookie(MAGIC | (kind as u64) << 40 | (owner & 0xff_ffff_ffff))
}

/// Whether a cookie is periscope's.
pub fn is_ours(c: Cookie) -> bool {
    c.0 & OURS_MASK == MAGIC
}

/// Whether a cookie is that of a flow serving taps (copies, their fan-out, probes), as opposed
/// to the pipeline every bridge has (base forwarding, discovery).
pub fn serves_taps(c: Cookie) -> bool {
    matches!(decode(c), Some((k, _)) if k == Kind::Mirror as u8 || k == Kind::Classify as u8 || k == Kind::Probe as u8 || k == Kind::Delivery as u8)
}

/// Whether a cookie is periscope's and reconciled: everything of ours but the flows the
/// `learning-switch` app learned.
pub fn is_reconciled(c: Cookie) -> bool {
    is_ours(c) && !matches!(decode(c), Some((k, _)) if k == Kind::Learned as u8)
}

/// The kind and owner of one of our cookies.
pub fn decode(c: Cookie) -> Option<(u8, u64)> {
    is_ours(c).then_some(((c.0 >> 40) as u8, c.0 & 0xff_ffff_ffff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_foreign_ones_are_not_ours() {
        let c = cookie(Kind::Mirror, 42);
        assert!(is_ours(c));
        assert_eq!(decode(c), Some((2, 42)));
        assert!(!is_ours(Cookie(0)));
        assert!(!is_ours(Cookie(0x1234 << 48)));
        assert!(is_reconciled(c));
        assert!(!is_reconciled(cookie(Kind::Learned, 0)));
    }
}
