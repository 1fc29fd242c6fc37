//! Registry stage: the OCI distribution client (auth challenges, catalog and tag paging, manifests, verified
//! blob streams, retries) and the OCI layout source, behind one [`Source`], plus the crawl over both.

pub mod auth;
pub mod client;
pub mod crawl;
pub mod distribution;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod source;
pub mod verify;

pub use client::{user_agent, RegistryClient, USER_AGENT_PRODUCT};
pub use crawl::{crawl, crawl_registry, CrawlFailure, CrawlReport, ImageRecord};
pub use error::RegistryError;
pub use layout::OciLayout;
pub use manifest::{FetchedManifest, ImageConfig, ManifestContent};
pub use source::{BlobStream, Source};
