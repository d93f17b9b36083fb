//! Shared pieces of Flagstream's benchmarks and load tools.

pub mod corpus;
pub mod traffic;
