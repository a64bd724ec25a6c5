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

/// Codes of `OFPET_HELLO_FAILED`.
pub mod hello_failed {
    /// No compatible version.
    pub const INCOMPATIBLE: u16 = 0;
    /// Permissions error.
    pub const EPERM: u16 = 1;
}

/// Codes of `OFPET_BAD_REQUEST` used by the decoder.
pub mod bad_request {
    /// ofp_header.version not supported.
    pub const BAD_VERSION: u16 = 0;
    /// ofp_header.type not supported.
    pub const BAD_TYPE: u16 = 1;
    /// ofp_multipart_request.type not supported.
    pub const BAD_MULTIPART: u16 = 2;
    /// Experimenter id not supported.
    pub const BAD_EXPERIMENTER: u16 = 3;
    /// Experimenter type not supported.
    pub const BAD_EXP_TYPE: u16 = 4;
    /// Permissions error.
    pub const EPERM: u16 = 5;
    /// Wrong request length for type.
    pub const BAD_LEN: u16 = 6;
}

/// Codes of `OFPET_BAD_ACTION` used by the decoder.
pub mod bad_action {
    /// Unknown or unsupported action type.
    pub const BAD_TYPE: u16 = 0;
    /// Length problem in actions.
    pub const BAD_LEN: u16 = 1;
}

/// Codes of `OFPET_BAD_INSTRUCTION` used by the decoder.
pub mod bad_instruction {
    /// Unknown instruction.
    pub const UNKNOWN_INST: u16 = 0;
    /// Length problem in instructions.
    pub const BAD_LEN: u16 = 7;
}

/// Codes of `OFPET_BAD_MATCH` used by the decoder.
pub mod bad_match {
    /// Length problem in match.
    pub const BAD_LEN: u16 = 1;
    /// Unsupported field type in the match.
    pub const BAD_FIELD: u16 = 5;
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
}
