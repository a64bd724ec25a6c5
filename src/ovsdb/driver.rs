//! tokio driver (placeholder)
