//! OFPT_TABLE_MOD (spec 1.3.5 §7.3.3).

use super::opaque_body;

opaque_body!(
    /// OFPT_TABLE_MOD (spec 1.3.5 §7.3.3); body kept as bytes until decoded in full.
    TableMod
);
