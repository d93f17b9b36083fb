//! Integration tests: real PostgreSQL, real Kafka-protocol brokers.
#![allow(clippy::unwrap_used)]

mod e2e;
mod faults;
mod pipeline;
mod procs;
mod support;
