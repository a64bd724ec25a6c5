//! Tests of the assertions.
