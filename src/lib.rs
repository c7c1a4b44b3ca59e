//! Switchyard: a self-hostable engine that pushes an application's events to its customers'
//! systems. See ARCHITECTURE.md for the map.

pub mod activations;
pub mod api;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod engine;
pub mod janitor;
pub mod listen;
pub mod recovery;
pub mod server;
pub mod store;
pub mod targets;
