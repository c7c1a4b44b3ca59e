//! The end-to-end tests, in one test binary (one link step): each module starts real servers
//! (in this process or the `switchyard` binary) on 127.0.0.1. `common` is the shared harness.

mod common;

mod activate_cli;
mod activations;
mod api_envelope;
mod catalog_api;
mod connections;
mod crash_recovery;
mod delivery;
mod endpoint_health;
mod hardening;
mod host_platform;
mod integrations_api;
mod integrations_delivery;
mod listen;
mod mailers;
mod node_roles;
mod operations;
mod ordering;
mod postgres_faults;
mod postgres_nodes;
mod postgres_restart;
mod pull_api;
mod receiver_auth;
mod store_conformance;
mod suppressions;
mod throttling;
mod traces;
mod webhooks_api;
