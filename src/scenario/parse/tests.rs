//! Tests of scenario parsing.
