//! OVSDB management protocol (RFC 7047) and Open vSwitch's extensions to it.
