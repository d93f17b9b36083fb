//! Integration tests: real PostgreSQL, real Kafka-protocol brokers.
#![allow(clippy::unwrap_used)]

mod e2e;
mod pipeline;
mod support;
