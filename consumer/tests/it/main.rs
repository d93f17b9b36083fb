//! Integration tests: real PostgreSQL, real Kafka-protocol brokers.
#![allow(clippy::unwrap_used)]

mod alerts;
mod backtest;
mod e2e;
mod faults;
mod monitoring;
mod pipeline;
mod poison;
mod procs;
mod soak;
mod support;
