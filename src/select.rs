//! Selection: which images a scheduled run looks at, and why. A run compares what the crawl lists with
//! what the warehouse already holds (every image's newest row, its stored inventory) and with the registry
//! activity (pushes and pulls from webhooks or imported event files, Vigil's own pulls excluded), all read
//! through the warehouse's read API ([`crate::warehouse::read`]).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::model::Package;
use crate::warehouse::read::{self, LastActivity};
use crate::warehouse::{Warehouse, WarehouseError};

pub use crate::warehouse::read::{ActivityKey, ImageKey, StoredImage};

/// What a schedule asks a run to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Digests never scanned before are fetched and inventoried.
    pub new_images: bool,
    /// Images pulled within this window are re-matched from their stored inventory.
    pub pulled_within: Option<Duration>,
    /// Images pushed within this window are re-matched too.
    pub pushed_within: Option<Duration>,
    /// At most this many new images per run; the rest wait for the next, oldest push first.
    pub max_images: Option<usize>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            new_images: true,
            pulled_within: None,
            pushed_within: None,
            max_images: None,
        }
    }
}

/// What the warehouse knows before a run.
#[derive(Debug, Default)]
pub struct History {
    /// The newest row of every image ever scanned.
    pub previous: HashMap<ImageKey, StoredImage>,
    /// Newest pull and push per digest and registry, by anyone but Vigil.
    pub pulls: HashMap<ActivityKey, DateTime<Utc>>,
    pub pushes: HashMap<ActivityKey, DateTime<Utc>>,
}

/// Reads the newest row of every image ever scanned, and the registry activity.
pub async fn load_history(warehouse: &Warehouse) -> Result<History, WarehouseError> {
    let previous = read::newest_images(warehouse).await?;
    let LastActivity { pulls, pushes } = read::last_activity(warehouse).await?;
    Ok(History {
        previous,
        pulls,
        pushes,
    })
}

/// The stored packages of the given images, from the scans that inventoried them.
pub async fn stored_packages(
    warehouse: &Warehouse,
    wanted: &[(ImageKey, String)],
) -> Result<HashMap<ImageKey, Vec<Package>>, WarehouseError> {
    read::stored_packages(warehouse, wanted).await
}
