//! Switchyard: a self-hostable engine that pushes an application's events to its customers'
//! systems. See ARCHITECTURE.md for the map. Modules are public only where the binary, the
//! end-to-end tests or the benchmark use them, so the compiler reports dead code everywhere else.

pub mod activations;
pub(crate) mod api;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub(crate) mod engine;
pub(crate) mod janitor;
pub(crate) mod listen;
pub(crate) mod recovery;
pub mod server;
pub mod store;
pub mod targets;
pub(crate) mod traces;
