//! Pure domain logic: no I/O, no clocks, no randomness of its own.
//! Callers pass `now` and random numbers in, so every rule here is testable as a plain function.

pub mod delivery;
pub mod destination;
pub(crate) mod endpoint;
pub mod event;
pub(crate) mod event_types;
pub mod fanout;
pub mod fields;
pub mod health;
pub mod ids;
pub mod integration;
pub(crate) mod json;
pub(crate) mod mailer;
pub(crate) mod mapping;
pub(crate) mod names;
pub(crate) mod operational;
pub mod ownership;
pub mod retention;
pub(crate) mod retry;
pub mod signing;
pub mod task;
pub mod throttle;
pub mod time;
pub mod url_policy;
pub mod window;
