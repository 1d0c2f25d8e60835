//! PATCH bodies tell "leave it" (field absent) from "clear it" (`null`):
//! `#[serde(default, deserialize_with = "nullable")] field: Option<Option<T>>`.

use serde::{Deserialize, Deserializer};

pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The new value of a nullable field: the PATCH's if it named the field, else
/// the current one.
pub fn merge<T>(patch: Option<Option<T>>, current: Option<T>) -> Option<T> {
    patch.unwrap_or(current)
}
