//! Integration tests: real PostgreSQL, real Kafka-protocol brokers.

mod e2e;
mod pipeline;
mod support;
