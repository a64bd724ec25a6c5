//! OFPT_FLOW_REMOVED (spec 1.3.5 §7.4.2).

use super::opaque_body;

opaque_body!(
    /// OFPT_FLOW_REMOVED (spec 1.3.5 §7.4.2); body kept as bytes until decoded in full.
    FlowRemoved
);
