//! Pure domain logic, and the records every layer shares (accounts, targets, events,
//! deliveries, activations, tasks, the queue's claims and results), keyed by the typed ids of
//! `ids`. No I/O, no clocks, no randomness of its own (new ids aside: `ids::*::now_v7`). Callers
//! pass `now` and random numbers in, so every rule here is testable as a plain function.

pub mod access;
pub mod account;
pub mod activation;
pub mod audit;
pub mod delivery;
pub mod destination;
pub mod endpoint;
pub mod event;
pub mod event_types;
pub mod fanout;
pub mod fields;
pub mod health;
pub mod ids;
pub mod integration;
pub(crate) mod json;
pub mod mailer;
pub(crate) mod mapping;
pub(crate) mod names;
pub(crate) mod operational;
pub mod ownership;
pub mod portal;
pub mod queue;
pub mod receiver_auth;
pub mod retention;
pub(crate) mod retry;
pub mod signing;
pub mod suppression;
pub mod task;
pub mod throttle;
pub mod time;
pub mod timeline;
pub mod url_policy;
pub mod walk;
pub mod window;
