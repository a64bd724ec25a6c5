//! The northbound side: what tenants ask for (tap services and tap flows), how it is stored,
//! and the REST API through which the cloud controller asks.

pub mod api;
pub mod model;
pub mod store;
