//! What the catalog shares between roles: the category list, the time-zone
//! check and the public event-page cache (invalidated by the API on edits and
//! by the workers on stock changes).

pub mod cache;
pub mod timezones;

pub use cache::EventCache;

/// The categories an event can be filed under. A fixed list, so that search
/// facets stay clean; `other` catches the rest.
pub const CATEGORIES: &[&str] = &[
    "arts",
    "business",
    "comedy",
    "community",
    "conference",
    "family",
    "festival",
    "film",
    "food",
    "music",
    "nightlife",
    "sports",
    "theatre",
    "other",
];

pub fn is_category(value: &str) -> bool {
    CATEGORIES.contains(&value)
}
