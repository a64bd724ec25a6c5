//! Errors: [`DecodeError`] for bytes we could not parse, and [`ErrorMsg`] for OFPT_ERROR, the
//! message a switch or controller sends when a request failed (spec 1.3.5 §7.4.4).
//!
//! ```text
//! struct ofp_error_msg {
//!     struct ofp_header header;
//!     uint16_t type;
//!     uint16_t code;
//!     uint8_t data[0];  /* at least 64 bytes of the failed request */
//! };
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use thiserror::Error;

use super::wire::Reader;

/// Why bytes could not be decoded. Each variant names the field and the absolute offset, and
/// [`DecodeError::ofp_error`] gives the OFPT_ERROR (type, code) to answer the peer with.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the field needs.
    #[error("truncated {what} at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Absolute offset in the message.
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A length field that is too short, too long or misaligned.
    #[error("bad length {len} in {what} at offset {offset}")]
    BadLength {
        /// The structure whose length is wrong.
        what: &'static str,
        /// Absolute offset of the structure.
        offset: usize,
        /// The length found.
        len: usize,
    },
    /// A message of a version other than OpenFlow 1.3 (only HELLO may carry another).
    #[error("unsupported OpenFlow version {version:#04x} (only 0x04, OpenFlow 1.3, is spoken)")]
    BadVersion {
        /// The version byte found.
        version: u8,
    },
    /// A field whose value is not allowed there.
    #[error("bad value {value:#x} for {what} at offset {offset}")]
    BadValue {
        /// The field.
        what: &'static str,
        /// Absolute offset of the field.
        offset: usize,
        /// The value found.
        value: u64,
    },
    /// Bytes left over after a structure that should have consumed them all.
    #[error("{extra} trailing bytes after {what} at offset {offset}")]
    Trailing {
        /// The structure.
        what: &'static str,
        /// Absolute offset of the first extra byte.
        offset: usize,
        /// How many bytes were left.
        extra: usize,
    },
}

impl DecodeError {
    /// Absolute offset in the message where the problem was found.
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::Truncated { offset, .. }
            | DecodeError::BadLength { offset, .. }
            | DecodeError::BadValue { offset, .. }
            | DecodeError::Trailing { offset, .. } => offset,
            DecodeError::BadVersion { .. } => 1,
        }
    }

    /// The same error with its offset moved by `by` bytes: for a message parsed on its own but
    /// embedded in another (a bundled message), so that the offset counts from the outer start.
    pub fn shifted(self, by: usize) -> Self {
        match self {
            DecodeError::Truncated { what, offset, need, have } => {
                DecodeError::Truncated { what, offset: offset + by, need, have }
            }
            DecodeError::BadLength { what, offset, len } => {
                DecodeError::BadLength { what, offset: offset + by, len }
            }
            DecodeError::BadValue { what, offset, value } => {
                DecodeError::BadValue { what, offset: offset + by, value }
            }
            DecodeError::Trailing { what, offset, extra } => {
                DecodeError::Trailing { what, offset: offset + by, extra }
            }
            DecodeError::BadVersion { .. } => self,
        }
    }

    /// The OFPT_ERROR (type, code) that tells the peer what was wrong with its message.
    pub fn ofp_error(&self) -> (ErrorType, u16) {
        match self {
            DecodeError::BadVersion { .. } => (ErrorType::BadRequest, bad_request::BAD_VERSION),
            DecodeError::Truncated { what, .. }
            | DecodeError::BadLength { what, .. }
            | DecodeError::Trailing { what, .. } => {
                if what.starts_with("oxm") || what.starts_with("match") {
                    (ErrorType::BadMatch, bad_match::BAD_LEN)
                } else if what.starts_with("action") {
                    (ErrorType::BadAction, bad_action::BAD_LEN)
                } else if what.starts_with("instruction") {
                    (ErrorType::BadInstruction, bad_instruction::BAD_LEN)
                } else {
                    (ErrorType::BadRequest, bad_request::BAD_LEN)
                }
            }
            DecodeError::BadValue { what, .. } => {
                if what.starts_with("oxm") || what.starts_with("match") {
                    (ErrorType::BadMatch, bad_match::BAD_FIELD)
                } else if what.starts_with("action") {
                    (ErrorType::BadAction, bad_action::BAD_TYPE)
                } else if what.starts_with("instruction") {
                    (ErrorType::BadInstruction, bad_instruction::UNKNOWN_INST)
                } else if *what == "message type" {
                    (ErrorType::BadRequest, bad_request::BAD_TYPE)
                } else {
                    (ErrorType::BadRequest, bad_request::EPERM)
                }
            }
        }
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident : $repr:ty { $($(#[$vm:meta])* $v:ident = $val:expr => $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $v,)*
            /// A value this codec does not know; kept as-is.
            Unknown($repr),
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                match v {
                    $($val => $name::$v,)*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                match v {
                    $($name::$v => $val,)*
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The name Open vSwitch prints for this value, if it is known.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $($name::$v => Some($text),)*
                    $name::Unknown(_) => None,
                }
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// `ofp_error_type`.
    ErrorType: u16 {
        /// Hello protocol failed.
        HelloFailed = 0 => "OFPET_HELLO_FAILED",
        /// Request was not understood.
        BadRequest = 1 => "OFPET_BAD_REQUEST",
        /// Error in action description.
        BadAction = 2 => "OFPET_BAD_ACTION",
        /// Error in instruction list.
        BadInstruction = 3 => "OFPET_BAD_INSTRUCTION",
        /// Error in match.
        BadMatch = 4 => "OFPET_BAD_MATCH",
        /// Problem modifying a flow entry.
        FlowModFailed = 5 => "OFPET_FLOW_MOD_FAILED",
        /// Problem modifying a group entry.
        GroupModFailed = 6 => "OFPET_GROUP_MOD_FAILED",
        /// Port mod request failed.
        PortModFailed = 7 => "OFPET_PORT_MOD_FAILED",
        /// Table mod request failed.
        TableModFailed = 8 => "OFPET_TABLE_MOD_FAILED",
        /// Queue operation failed.
        QueueOpFailed = 9 => "OFPET_QUEUE_OP_FAILED",
        /// Switch config request failed.
        SwitchConfigFailed = 10 => "OFPET_SWITCH_CONFIG_FAILED",
        /// Controller role request failed.
        RoleRequestFailed = 11 => "OFPET_ROLE_REQUEST_FAILED",
        /// Error in meter.
        MeterModFailed = 12 => "OFPET_METER_MOD_FAILED",
        /// Setting table features failed.
        TableFeaturesFailed = 13 => "OFPET_TABLE_FEATURES_FAILED",
        /// Experimenter error (body starts with exp_type and experimenter id).
        Experimenter = 0xffff => "OFPET_EXPERIMENTER",
    }
}

/// Declares the codes of one error type: a module of `u16` constants (spec names) and a
/// `name` lookup giving the name Open vSwitch prints, which for a few codes differs from the spec.
macro_rules! error_codes {
    ($(#[$m:meta])* $module:ident { $($(#[$cm:meta])* $c:ident = $val:expr => $text:literal,)* }) => {
        $(#[$m])*
        pub mod $module {
            $($(#[$cm])* pub const $c: u16 = $val;)*

            /// The name Open vSwitch prints for `code`, if it is one of these.
            pub fn name(code: u16) -> Option<&'static str> {
                match code {
                    $($val => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// Codes of `OFPET_HELLO_FAILED`.
    hello_failed {
        /// No compatible version.
        INCOMPATIBLE = 0 => "OFPHFC_INCOMPATIBLE",
        /// Permissions error.
        EPERM = 1 => "OFPHFC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_BAD_REQUEST`.
    bad_request {
        /// ofp_header.version not supported.
        BAD_VERSION = 0 => "OFPBRC_BAD_VERSION",
        /// ofp_header.type not supported.
        BAD_TYPE = 1 => "OFPBRC_BAD_TYPE",
        /// ofp_multipart_request.type not supported (OVS keeps the 1.0 name, BAD_STAT).
        BAD_MULTIPART = 2 => "OFPBRC_BAD_STAT",
        /// Experimenter id not supported (OVS: BAD_VENDOR).
        BAD_EXPERIMENTER = 3 => "OFPBRC_BAD_VENDOR",
        /// Experimenter type not supported (OVS: BAD_SUBTYPE).
        BAD_EXP_TYPE = 4 => "OFPBRC_BAD_SUBTYPE",
        /// Permissions error.
        EPERM = 5 => "OFPBRC_EPERM",
        /// Wrong request length for type.
        BAD_LEN = 6 => "OFPBRC_BAD_LEN",
        /// Specified buffer has already been used.
        BUFFER_EMPTY = 7 => "OFPBRC_BUFFER_EMPTY",
        /// Specified buffer does not exist.
        BUFFER_UNKNOWN = 8 => "OFPBRC_BUFFER_UNKNOWN",
        /// Specified table id is invalid or does not exist.
        BAD_TABLE_ID = 9 => "OFPBRC_BAD_TABLE_ID",
        /// Denied because the controller is a slave (OVS: IS_SECONDARY).
        IS_SLAVE = 10 => "OFPBRC_IS_SECONDARY",
        /// Invalid port.
        BAD_PORT = 11 => "OFPBRC_BAD_PORT",
        /// Invalid packet in packet-out.
        BAD_PACKET = 12 => "OFPBRC_BAD_PACKET",
        /// Multipart request overflowed the assigned buffer.
        MULTIPART_BUFFER_OVERFLOW = 13 => "OFPBRC_MULTIPART_BUFFER_OVERFLOW",
    }
}

error_codes! {
    /// Codes of `OFPET_BAD_ACTION`.
    bad_action {
        /// Unknown or unsupported action type.
        BAD_TYPE = 0 => "OFPBAC_BAD_TYPE",
        /// Length problem in actions.
        BAD_LEN = 1 => "OFPBAC_BAD_LEN",
        /// Unknown experimenter id (OVS: BAD_VENDOR).
        BAD_EXPERIMENTER = 2 => "OFPBAC_BAD_VENDOR",
        /// Unknown action for the experimenter id (OVS: BAD_VENDOR_TYPE).
        BAD_EXP_TYPE = 3 => "OFPBAC_BAD_VENDOR_TYPE",
        /// Problem validating the output port.
        BAD_OUT_PORT = 4 => "OFPBAC_BAD_OUT_PORT",
        /// Bad action argument.
        BAD_ARGUMENT = 5 => "OFPBAC_BAD_ARGUMENT",
        /// Permissions error.
        EPERM = 6 => "OFPBAC_EPERM",
        /// Cannot handle this many actions.
        TOO_MANY = 7 => "OFPBAC_TOO_MANY",
        /// Problem validating the output queue.
        BAD_QUEUE = 8 => "OFPBAC_BAD_QUEUE",
        /// Invalid group id in a forward action.
        BAD_OUT_GROUP = 9 => "OFPBAC_BAD_OUT_GROUP",
        /// Action cannot apply to this match, or set-field is missing a prerequisite.
        MATCH_INCONSISTENT = 10 => "OFPBAC_MATCH_INCONSISTENT",
        /// Action order is unsupported for the action list in an apply-actions instruction.
        UNSUPPORTED_ORDER = 11 => "OFPBAC_UNSUPPORTED_ORDER",
        /// Action uses an unsupported tag or encapsulation.
        BAD_TAG = 12 => "OFPBAC_BAD_TAG",
        /// Unsupported type in a set-field action.
        BAD_SET_TYPE = 13 => "OFPBAC_BAD_SET_TYPE",
        /// Length problem in a set-field action.
        BAD_SET_LEN = 14 => "OFPBAC_BAD_SET_LEN",
        /// Bad argument in a set-field action.
        BAD_SET_ARGUMENT = 15 => "OFPBAC_BAD_SET_ARGUMENT",
    }
}

error_codes! {
    /// Codes of `OFPET_BAD_INSTRUCTION`.
    bad_instruction {
        /// Unknown instruction.
        UNKNOWN_INST = 0 => "OFPBIC_UNKNOWN_INST",
        /// Switch or table does not support the instruction.
        UNSUP_INST = 1 => "OFPBIC_UNSUP_INST",
        /// Invalid table id.
        BAD_TABLE_ID = 2 => "OFPBIC_BAD_TABLE_ID",
        /// Metadata value unsupported by the datapath.
        UNSUP_METADATA = 3 => "OFPBIC_UNSUP_METADATA",
        /// Metadata mask value unsupported by the datapath.
        UNSUP_METADATA_MASK = 4 => "OFPBIC_UNSUP_METADATA_MASK",
        /// Unknown experimenter id.
        BAD_EXPERIMENTER = 5 => "OFPBIC_BAD_EXPERIMENTER",
        /// Unknown instruction for the experimenter id.
        BAD_EXP_TYPE = 6 => "OFPBIC_BAD_EXP_TYPE",
        /// Length problem in instructions.
        BAD_LEN = 7 => "OFPBIC_BAD_LEN",
        /// Permissions error.
        EPERM = 8 => "OFPBIC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_BAD_MATCH`.
    bad_match {
        /// Unsupported match type.
        BAD_TYPE = 0 => "OFPBMC_BAD_TYPE",
        /// Length problem in match.
        BAD_LEN = 1 => "OFPBMC_BAD_LEN",
        /// Match uses an unsupported tag or encapsulation.
        BAD_TAG = 2 => "OFPBMC_BAD_TAG",
        /// Unsupported datalink address mask.
        BAD_DL_ADDR_MASK = 3 => "OFPBMC_BAD_DL_ADDR_MASK",
        /// Unsupported network address mask.
        BAD_NW_ADDR_MASK = 4 => "OFPBMC_BAD_NW_ADDR_MASK",
        /// Unsupported combination of wildcarded fields.
        BAD_WILDCARDS = 5 => "OFPBMC_BAD_WILDCARDS",
        /// Unsupported field type in the match.
        BAD_FIELD = 6 => "OFPBMC_BAD_FIELD",
        /// Unsupported value in a match field.
        BAD_VALUE = 7 => "OFPBMC_BAD_VALUE",
        /// Unsupported mask.
        BAD_MASK = 8 => "OFPBMC_BAD_MASK",
        /// A prerequisite was not met.
        BAD_PREREQ = 9 => "OFPBMC_BAD_PREREQ",
        /// A field type was duplicated.
        DUP_FIELD = 10 => "OFPBMC_DUP_FIELD",
        /// Permissions error.
        EPERM = 11 => "OFPBMC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_FLOW_MOD_FAILED`.
    flow_mod_failed {
        /// Unspecified error.
        UNKNOWN = 0 => "OFPFMFC_UNKNOWN",
        /// Flow not added because the table was full.
        TABLE_FULL = 1 => "OFPFMFC_TABLE_FULL",
        /// Table does not exist.
        BAD_TABLE_ID = 2 => "OFPFMFC_BAD_TABLE_ID",
        /// Attempted to add an overlapping flow with CHECK_OVERLAP set.
        OVERLAP = 3 => "OFPFMFC_OVERLAP",
        /// Permissions error.
        EPERM = 4 => "OFPFMFC_EPERM",
        /// Unsupported idle or hard timeout.
        BAD_TIMEOUT = 5 => "OFPFMFC_BAD_TIMEOUT",
        /// Unsupported or unknown command.
        BAD_COMMAND = 6 => "OFPFMFC_BAD_COMMAND",
        /// Unsupported or unknown flags.
        BAD_FLAGS = 7 => "OFPFMFC_BAD_FLAGS",
    }
}

error_codes! {
    /// Codes of `OFPET_GROUP_MOD_FAILED`.
    group_mod_failed {
        /// Group not added because a group of that id already exists.
        GROUP_EXISTS = 0 => "OFPGMFC_GROUP_EXISTS",
        /// Group not added because the group specified is invalid.
        INVALID_GROUP = 1 => "OFPGMFC_INVALID_GROUP",
        /// Switch does not support unequal load sharing with select groups.
        WEIGHT_UNSUPPORTED = 2 => "OFPGMFC_WEIGHT_UNSUPPORTED",
        /// The group table is full.
        OUT_OF_GROUPS = 3 => "OFPGMFC_OUT_OF_GROUPS",
        /// The maximum number of action buckets for a group has been exceeded.
        OUT_OF_BUCKETS = 4 => "OFPGMFC_OUT_OF_BUCKETS",
        /// Switch does not support groups that forward to groups.
        CHAINING_UNSUPPORTED = 5 => "OFPGMFC_CHAINING_UNSUPPORTED",
        /// This group cannot watch the watch_port or watch_group specified.
        WATCH_UNSUPPORTED = 6 => "OFPGMFC_WATCH_UNSUPPORTED",
        /// Group entry would cause a loop.
        LOOP = 7 => "OFPGMFC_LOOP",
        /// Group not modified because the group does not exist.
        UNKNOWN_GROUP = 8 => "OFPGMFC_UNKNOWN_GROUP",
        /// Group not deleted because another group forwards to it.
        CHAINED_GROUP = 9 => "OFPGMFC_CHAINED_GROUP",
        /// Unsupported or unknown group type.
        BAD_TYPE = 10 => "OFPGMFC_BAD_TYPE",
        /// Unsupported or unknown command.
        BAD_COMMAND = 11 => "OFPGMFC_BAD_COMMAND",
        /// Error in bucket.
        BAD_BUCKET = 12 => "OFPGMFC_BAD_BUCKET",
        /// Error in watch port or group.
        BAD_WATCH = 13 => "OFPGMFC_BAD_WATCH",
        /// Permissions error.
        EPERM = 14 => "OFPGMFC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_PORT_MOD_FAILED`.
    port_mod_failed {
        /// Specified port number does not exist.
        BAD_PORT = 0 => "OFPPMFC_BAD_PORT",
        /// Specified hardware address does not match the port number.
        BAD_HW_ADDR = 1 => "OFPPMFC_BAD_HW_ADDR",
        /// Specified config is invalid.
        BAD_CONFIG = 2 => "OFPPMFC_BAD_CONFIG",
        /// Specified advertise is invalid.
        BAD_ADVERTISE = 3 => "OFPPMFC_BAD_ADVERTISE",
        /// Permissions error.
        EPERM = 4 => "OFPPMFC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_TABLE_MOD_FAILED`.
    table_mod_failed {
        /// Specified table does not exist.
        BAD_TABLE = 0 => "OFPTMFC_BAD_TABLE",
        /// Specified config is invalid.
        BAD_CONFIG = 1 => "OFPTMFC_BAD_CONFIG",
        /// Permissions error.
        EPERM = 2 => "OFPTMFC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_QUEUE_OP_FAILED`.
    queue_op_failed {
        /// Invalid port, or the port does not exist.
        BAD_PORT = 0 => "OFPQOFC_BAD_PORT",
        /// Queue does not exist.
        BAD_QUEUE = 1 => "OFPQOFC_BAD_QUEUE",
        /// Permissions error.
        EPERM = 2 => "OFPQOFC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_SWITCH_CONFIG_FAILED`.
    switch_config_failed {
        /// Specified flags are invalid.
        BAD_FLAGS = 0 => "OFPSCFC_BAD_FLAGS",
        /// Specified miss send length is invalid.
        BAD_LEN = 1 => "OFPSCFC_BAD_LEN",
        /// Permissions error.
        EPERM = 2 => "OFPSCFC_EPERM",
    }
}

error_codes! {
    /// Codes of `OFPET_ROLE_REQUEST_FAILED`.
    role_request_failed {
        /// Stale message: old generation id.
        STALE = 0 => "OFPRRFC_STALE",
        /// Controller role change unsupported.
        UNSUP = 1 => "OFPRRFC_UNSUP",
        /// Invalid role.
        BAD_ROLE = 2 => "OFPRRFC_BAD_ROLE",
    }
}

error_codes! {
    /// Codes of `OFPET_METER_MOD_FAILED`.
    meter_mod_failed {
        /// Unspecified error.
        UNKNOWN = 0 => "OFPMMFC_UNKNOWN",
        /// Meter not added because a meter of that id already exists.
        METER_EXISTS = 1 => "OFPMMFC_METER_EXISTS",
        /// Meter not added because the meter specified is invalid.
        INVALID_METER = 2 => "OFPMMFC_INVALID_METER",
        /// Meter not modified because the meter does not exist.
        UNKNOWN_METER = 3 => "OFPMMFC_UNKNOWN_METER",
        /// Unsupported or unknown command.
        BAD_COMMAND = 4 => "OFPMMFC_BAD_COMMAND",
        /// Flag configuration unsupported.
        BAD_FLAGS = 5 => "OFPMMFC_BAD_FLAGS",
        /// Rate unsupported.
        BAD_RATE = 6 => "OFPMMFC_BAD_RATE",
        /// Burst size unsupported.
        BAD_BURST = 7 => "OFPMMFC_BAD_BURST",
        /// Band unsupported.
        BAD_BAND = 8 => "OFPMMFC_BAD_BAND",
        /// Band value unsupported.
        BAD_BAND_VALUE = 9 => "OFPMMFC_BAD_BAND_VALUE",
        /// No more meters available.
        OUT_OF_METERS = 10 => "OFPMMFC_OUT_OF_METERS",
        /// The maximum number of bands for a meter has been exceeded.
        OUT_OF_BANDS = 11 => "OFPMMFC_OUT_OF_BANDS",
    }
}

error_codes! {
    /// Codes of `OFPET_TABLE_FEATURES_FAILED`. Open vSwitch prints codes 2 to 4 as the
    /// property errors of OpenFlow 1.4 (`OFPBPC_*`), which is what they mean.
    table_features_failed {
        /// Specified table does not exist.
        BAD_TABLE = 0 => "OFPTFFC_BAD_TABLE",
        /// Invalid metadata mask.
        BAD_METADATA = 1 => "OFPTFFC_BAD_METADATA",
        /// Unknown property type.
        BAD_TYPE = 2 => "OFPBPC_BAD_TYPE",
        /// Length problem in properties.
        BAD_LEN = 3 => "OFPBPC_BAD_LEN",
        /// Unsupported property value.
        BAD_ARGUMENT = 4 => "OFPBPC_BAD_VALUE",
        /// Permissions error.
        EPERM = 5 => "OFPTFFC_EPERM",
    }
}

error_codes! {
    /// Codes of the ONF bundle errors (EXT-230): in OpenFlow 1.3 an `OFPET_EXPERIMENTER` error
    /// with experimenter [`ONF_EXPERIMENTER_ID`](super::super::ONF_EXPERIMENTER_ID) and the code
    /// as `exp_type`.
    bundle_failed {
        /// Unspecified error.
        UNKNOWN = 2300 => "OFPBFC_UNKNOWN",
        /// Permissions error.
        EPERM = 2301 => "OFPBFC_EPERM",
        /// Bundle id does not exist.
        BAD_ID = 2302 => "OFPBFC_BAD_ID",
        /// Bundle id already exists.
        BUNDLE_EXIST = 2303 => "OFPBFC_BUNDLE_EXIST",
        /// Bundle id is closed.
        BUNDLE_CLOSED = 2304 => "OFPBFC_BUNDLE_CLOSED",
        /// Too many bundle ids in use.
        OUT_OF_BUNDLES = 2305 => "OFPBFC_OUT_OF_BUNDLES",
        /// Unsupported or unknown control message type.
        BAD_TYPE = 2306 => "OFPBFC_BAD_TYPE",
        /// Unsupported, unknown or inconsistent flags.
        BAD_FLAGS = 2307 => "OFPBFC_BAD_FLAGS",
        /// Length problem in an included message.
        MSG_BAD_LEN = 2308 => "OFPBFC_MSG_BAD_LEN",
        /// Inconsistent or duplicate xid.
        MSG_BAD_XID = 2309 => "OFPBFC_MSG_BAD_XID",
        /// Unsupported message in this bundle.
        MSG_UNSUP = 2310 => "OFPBFC_MSG_UNSUP",
        /// Unsupported message combination in this bundle.
        MSG_CONFLICT = 2311 => "OFPBFC_MSG_CONFLICT",
        /// Cannot handle this many messages in a bundle.
        MSG_TOO_MANY = 2312 => "OFPBFC_MSG_TOO_MANY",
        /// One message in the bundle failed.
        MSG_FAILED = 2313 => "OFPBFC_MSG_FAILED",
        /// Bundle is taking too long.
        TIMEOUT = 2314 => "OFPBFC_TIMEOUT",
        /// Bundle is locking the resource.
        BUNDLE_IN_PROGRESS = 2315 => "OFPBFC_BUNDLE_IN_PROGRESS",
    }
}

/// The name Open vSwitch prints for error `code` of `err_type` (e.g. `OFPBRC_BAD_LEN`), if the
/// code is defined for OpenFlow 1.3. For experimenter errors see [`experimenter_code_name`].
pub fn code_name(err_type: ErrorType, code: u16) -> Option<&'static str> {
    match err_type {
        ErrorType::HelloFailed => hello_failed::name(code),
        ErrorType::BadRequest => bad_request::name(code),
        ErrorType::BadAction => bad_action::name(code),
        ErrorType::BadInstruction => bad_instruction::name(code),
        ErrorType::BadMatch => bad_match::name(code),
        ErrorType::FlowModFailed => flow_mod_failed::name(code),
        ErrorType::GroupModFailed => group_mod_failed::name(code),
        ErrorType::PortModFailed => port_mod_failed::name(code),
        ErrorType::TableModFailed => table_mod_failed::name(code),
        ErrorType::QueueOpFailed => queue_op_failed::name(code),
        ErrorType::SwitchConfigFailed => switch_config_failed::name(code),
        ErrorType::RoleRequestFailed => role_request_failed::name(code),
        ErrorType::MeterModFailed => meter_mod_failed::name(code),
        ErrorType::TableFeaturesFailed => table_features_failed::name(code),
        ErrorType::Experimenter | ErrorType::Unknown(_) => None,
    }
}

/// The name Open vSwitch prints for an experimenter error, if this codec knows it (the ONF
/// bundle errors).
pub fn experimenter_code_name(experimenter: u32, exp_type: u16) -> Option<&'static str> {
    match experimenter {
        super::ONF_EXPERIMENTER_ID => bundle_failed::name(exp_type),
        _ => None,
    }
}

/// OFPT_ERROR: a request failed. `data` holds (at least the start of) the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorMsg {
    /// Error type.
    pub err_type: ErrorType,
    /// Error code, whose meaning depends on the type (for experimenter errors, `exp_type`).
    pub code: u16,
    /// For `OFPET_EXPERIMENTER`, the experimenter id.
    pub experimenter: Option<u32>,
    /// The bytes of the failed request, or ASCII text for HELLO_FAILED.
    pub data: Vec<u8>,
}

impl ErrorMsg {
    /// Parses the body after the OpenFlow header.
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let err_type = ErrorType::from(r.u16("error type")?);
        let code = r.u16("error code")?;
        let experimenter = if err_type == ErrorType::Experimenter {
            Some(r.u32("error experimenter")?)
        } else {
            None
        };
        let data = r.rest().to_vec();
        r.skip(data.len(), "error data")?;
        Ok(ErrorMsg { err_type, code, experimenter, data })
    }

    /// Emits the body after the OpenFlow header.
    pub fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.err_type.into());
        buf.put_u16(self.code);
        if let Some(e) = self.experimenter {
            buf.put_u32(e);
        }
        buf.put_slice(&self.data);
    }

    /// The name Open vSwitch prints for this error's code (e.g. `OFPFMFC_TABLE_FULL`), if known.
    pub fn code_name(&self) -> Option<&'static str> {
        match self.experimenter {
            Some(exp) => experimenter_code_name(exp, self.code),
            None => code_name(self.err_type, self.code),
        }
    }
}

/// Shows the error as Open vSwitch names it (`OFPBRC_BAD_LEN`), or by its numbers when the code
/// is unknown; a HELLO_FAILED error also shows the peer's explanation text.
impl fmt::Display for ErrorMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code_name(), self.experimenter) {
            (Some(name), _) => f.write_str(name)?,
            (None, Some(exp)) => {
                write!(f, "OFPET_EXPERIMENTER experimenter {exp:#010x} exp_type {}", self.code)?
            }
            (None, None) => match self.err_type.name() {
                Some(t) => write!(f, "{t} code {}", self.code)?,
                None => write!(f, "error type {} code {}", u16::from(self.err_type), self.code)?,
            },
        }
        if self.err_type == ErrorType::HelloFailed && !self.data.is_empty() {
            let text = String::from_utf8_lossy(&self.data);
            write!(f, ": {}", text.trim_end_matches('\0').trim())?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the message tests of this crate.

    use crate::openflow::OfpMessage;

    /// Bytes from hex text; whitespace is ignored.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        assert!(s.len() % 2 == 0, "odd number of hex digits");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Every strict prefix of `msg` is rejected. Every prefix whose header length is patched to
    /// match is parsed without panicking, and when it does parse (a list cut at an element
    /// boundary is still a valid message) it re-emits to exactly the bytes it came from.
    pub(crate) fn assert_truncations_fail(msg: &[u8]) {
        OfpMessage::parse(msg).expect("the sample itself parses");
        for n in 0..msg.len() {
            assert!(OfpMessage::parse(&msg[..n]).is_err(), "prefix of {n} bytes parsed");
            if n >= 8 {
                let mut cut = msg[..n].to_vec();
                cut[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                if let Ok(m) = OfpMessage::parse(&cut) {
                    assert_eq!(m.to_vec(), cut, "body cut at {n} bytes parsed as {m:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::test_util::{assert_truncations_fail, hex};
    use super::*;
    use crate::openflow::{Message, OfpMessage, Xid};

    /// A FLOW_MOD_FAILED/TABLE_FULL error carrying the first 12 bytes of a flow mod.
    const ERROR: &str = "0401 0018 00000007 0005 0001  040e 0050 00000007 00000000";
    /// An ONF bundle error (OFPBFC_BAD_ID) as an experimenter error.
    const BUNDLE_ERROR: &str = "0401 0018 00000009 ffff 08fe 4f4e4600  0404 0008 00000009";

    #[test]
    fn error_parses_and_names_its_code() {
        let m = OfpMessage::parse(&hex(ERROR)).unwrap();
        let Message::Error(e) = &m.msg else { panic!("not an error: {m:?}") };
        assert_eq!(e.err_type, ErrorType::FlowModFailed);
        assert_eq!(e.code, flow_mod_failed::TABLE_FULL);
        assert_eq!(e.data, hex("040e 0050 00000007 00000000"));
        assert_eq!(e.to_string(), "OFPFMFC_TABLE_FULL");
        assert_eq!(m.to_vec(), hex(ERROR));
    }

    #[test]
    fn experimenter_error_names_bundle_code() {
        let m = OfpMessage::parse(&hex(BUNDLE_ERROR)).unwrap();
        let Message::Error(e) = &m.msg else { panic!("not an error: {m:?}") };
        assert_eq!(e.experimenter, Some(crate::openflow::ONF_EXPERIMENTER_ID));
        assert_eq!(e.code, bundle_failed::BAD_ID);
        assert_eq!(e.to_string(), "OFPBFC_BAD_ID");
        assert_eq!(m.to_vec(), hex(BUNDLE_ERROR));
    }

    #[test]
    fn error_truncations_fail() {
        assert_truncations_fail(&hex(ERROR));
        assert_truncations_fail(&hex(BUNDLE_ERROR));
    }

    #[test]
    fn unknown_codes_show_numbers() {
        let e =
            |err_type, code, experimenter| ErrorMsg { err_type, code, experimenter, data: vec![] };
        assert_eq!(e(ErrorType::BadRequest, 99, None).to_string(), "OFPET_BAD_REQUEST code 99");
        assert_eq!(e(ErrorType::Unknown(42), 3, None).to_string(), "error type 42 code 3");
        assert_eq!(
            e(ErrorType::Experimenter, 7, Some(0x2320)).to_string(),
            "OFPET_EXPERIMENTER experimenter 0x00002320 exp_type 7"
        );
    }

    #[test]
    fn hello_failed_shows_peer_text() {
        let e = ErrorMsg {
            err_type: ErrorType::HelloFailed,
            code: hello_failed::INCOMPATIBLE,
            experimenter: None,
            data: b"We support versions 0x01 to 0x01\0".to_vec(),
        };
        assert_eq!(e.to_string(), "OFPHFC_INCOMPATIBLE: We support versions 0x01 to 0x01");
    }

    #[test]
    fn spec_codes_match_their_ovs_names() {
        assert_eq!(code_name(ErrorType::BadMatch, bad_match::BAD_FIELD), Some("OFPBMC_BAD_FIELD"));
        assert_eq!(
            code_name(ErrorType::BadRequest, bad_request::IS_SLAVE),
            Some("OFPBRC_IS_SECONDARY")
        );
        assert_eq!(code_name(ErrorType::MeterModFailed, 11), Some("OFPMMFC_OUT_OF_BANDS"));
        assert_eq!(code_name(ErrorType::MeterModFailed, 12), None);
        assert_eq!(code_name(ErrorType::Experimenter, 0), None);
    }

    #[test]
    fn decode_errors_map_to_spec_codes() {
        let bad_oxm = DecodeError::BadValue { what: "oxm field", offset: 20, value: 1 };
        assert_eq!(bad_oxm.ofp_error(), (ErrorType::BadMatch, bad_match::BAD_FIELD));
        assert_eq!(code_name(ErrorType::BadMatch, bad_oxm.ofp_error().1), Some("OFPBMC_BAD_FIELD"));
    }

    proptest! {
        #[test]
        fn error_round_trips(
            t in any::<u16>(),
            code in any::<u16>(),
            exp in any::<u32>(),
            data in proptest::collection::vec(any::<u8>(), 0..80),
            xid in any::<u32>(),
        ) {
            let err_type = ErrorType::from(t);
            let experimenter = (err_type == ErrorType::Experimenter).then_some(exp);
            let m = OfpMessage::new(Xid(xid), Message::Error(ErrorMsg { err_type, code, experimenter, data }));
            let back = OfpMessage::parse(&m.to_vec()).unwrap();
            prop_assert_eq!(&back, &m);
            let Message::Error(e) = back.msg else { unreachable!() };
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
