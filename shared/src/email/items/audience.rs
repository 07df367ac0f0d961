//! Audience members: `AUDIENCE#<bucket>` / `MEMBER#<user_id>`, spread over [`BUCKETS`]
//! partitions by a hash of the user id, so an import of a million rows writes to many
//! partitions and a fan-out pages them in parallel.

use crate::domain::audience::Member;
use crate::domain::ids::UserId;
use crate::ports::store::{Item, Key, Query, StoreError};

pub const BUCKETS: u32 = 32;
const KIND: &str = "audience_member";

/// The bucket of a user id (FNV-1a, stable).
pub fn bucket(user: &UserId) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in user.as_str().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % BUCKETS
}

pub fn key(user: &UserId) -> Key {
    Key::new(format!("AUDIENCE#{:02}", bucket(user)), format!("MEMBER#{user}"))
}

/// The members of one bucket.
pub fn bucket_query(bucket: u32) -> Query {
    Query::partition(format!("AUDIENCE#{bucket:02}")).prefix("MEMBER#")
}

pub fn to_item(m: &Member) -> Result<Item, StoreError> {
    crate::items::to_item(&key(&m.user_id), KIND, m)
}

pub fn from_item(item: &Item) -> Result<Member, StoreError> {
    crate::items::from_item(KIND, item)
}
