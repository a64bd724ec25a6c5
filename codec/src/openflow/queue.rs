//! OFPT_QUEUE_GET_CONFIG_REQUEST / _REPLY (spec 1.3.5 §7.3.6).

use super::opaque_body;

opaque_body!(
    /// OFPT_QUEUE_GET_CONFIG_REQUEST; body kept as bytes until decoded in full.
    QueueGetConfigRequest
);
opaque_body!(
    /// OFPT_QUEUE_GET_CONFIG_REPLY; body kept as bytes until decoded in full.
    QueueGetConfigReply
);
