//! OFPT_METER_MOD (spec 1.3.5 §7.3.4.4).

use super::opaque_body;

opaque_body!(
    /// OFPT_METER_MOD (spec 1.3.5 §7.3.4.4); body kept as bytes until decoded in full.
    MeterMod
);
