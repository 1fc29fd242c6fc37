//! Vigil: keeps watch over OCI container registries.
//!
//! Modules are listed in pipeline order, so `src/` reads top to bottom the way data flows: from the
//! settings and the registry crawl, through layers, packages and advisories, to the warehouse and the
//! questions asked of it, then the ways a run is started. A stage may use the stages above it and the
//! shared leaves (`model`, `version`); only the binary's command layer knows the whole pipeline.

// Shared leaves: the nouns every stage speaks, and version ordering per scheme.
pub mod model;
pub mod version;

// Settings: raw CLI arguments, and the configuration file resolved once into settings.
pub mod cli;
pub mod config;

// Crawl: the OCI distribution API and OCI layouts, every repository, tag and platform.
pub mod registry;

// Inventory: a layer streamed and walked once, the extractors that read packages from its files, and the
// layers of an image merged into its inventory.
pub mod layer;

pub mod extract;
pub mod inventory;

// Matching: the advisory database (OSV), then the findings of an inventory.
pub mod vulndb;

pub mod matcher;

// Warehouse: Parquet tables written with an atomic commit, and read back by the next run.
pub mod warehouse;

// One run: which images it looks at (selection), then the scan that evaluates and commits them.
pub mod select;

pub mod scan;

// Questions: reports, SQL and disable rules over the warehouse.
pub mod report;

// What starts runs: registry events, schedules and the daemon that runs both; and the embedded demo.
pub mod events;
pub mod schedule;

pub mod daemon;
pub mod demo;
