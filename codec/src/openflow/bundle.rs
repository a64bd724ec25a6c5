//! The ONF bundle extension for OpenFlow 1.3 (EXT-230), as experimenter messages.

use super::opaque_body;

opaque_body!(
    /// ONF_ET_BUNDLE_CONTROL; body kept as bytes until decoded in full.
    BundleControl
);
opaque_body!(
    /// ONF_ET_BUNDLE_ADD_MESSAGE; body kept as bytes until decoded in full.
    BundleAdd
);
