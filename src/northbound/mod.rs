//! The northbound side: what tenants ask for (tap services and tap flows), who may ask
//! (tokens, tenants' allow-lists and quotas), where it is kept (the `Periscope_Northbound`
//! OVSDB database) and the REST API through which the cloud controller asks.

pub mod api;
pub mod auth;
pub mod config;
pub mod db;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod rules;
pub mod server;
pub mod store;
pub mod taas;
