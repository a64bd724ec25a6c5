//! OFPT_GET_ASYNC_REPLY / OFPT_SET_ASYNC (spec 1.3.5 §7.3.10).

use super::opaque_body;

opaque_body!(
    /// OFPT_GET_ASYNC_REPLY / OFPT_SET_ASYNC (spec 1.3.5 §7.3.10); body kept as bytes until decoded in full.
    AsyncConfig
);
