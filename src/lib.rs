//! shardcat: a MySQL-protocol sharding proxy that reads Mycat configuration.
//! A query travels frontend → sql → route → exec → backend; see docs/ARCHITECTURE.md.

pub mod admin;
pub mod backend;
pub mod cache;
pub mod cdc;
pub mod config;
pub mod error;
pub mod exec;
pub mod frontend;
pub mod proto;
pub mod registry;
pub mod route;
pub mod rule;
pub mod runtime;
pub mod sequence;
pub mod server;
pub mod sql;
pub mod stats;
pub mod xa;
