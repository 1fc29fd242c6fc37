//! Vigil: keeps watch over OCI container registries.
//!
//! Modules are listed in pipeline order; data flows one way, from the registry crawl down to the
//! warehouse. A stage may use the stages above it and the shared leaves (`model`, `version`).

pub mod cli;
pub mod config;
pub mod model;

pub mod registry;

pub mod extract;
pub mod layer;

pub mod inventory;

pub mod matcher;
pub mod report;
pub mod warehouse;

pub mod daemon;
pub mod demo;
pub mod events;
pub mod scan;
pub mod schedule;
pub mod select;
pub mod version;
pub mod vulndb;
