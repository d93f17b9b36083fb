//! Shared pieces of Flagstream's benchmarks and load tools.

pub mod corpus;
pub mod realistic;
pub mod traffic;
