//! The audience in the store: imports that update members in place (a user id is one member,
//! however often it is imported) and counts.

use crate::domain::audience::Member;
use crate::email::items::audience::{self as item, BUCKETS};
use crate::ports::store::{Store, StoreError, query_all};

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Imported {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// Writes each member, by user id: new ones are created, changed ones replaced, identical
/// ones left alone (a re-import of the same file writes nothing).
pub async fn import<S: Store + ?Sized>(store: &S, members: &[Member]) -> Result<Imported, StoreError> {
    let mut out = Imported::default();
    for m in members {
        match store.get(&item::key(&m.user_id)).await? {
            Some(existing) if item::from_item(&existing).ok().as_ref() == Some(m) => out.unchanged += 1,
            Some(_) => {
                store.put(item::to_item(m)?, None).await?;
                out.updated += 1;
            }
            None => {
                store.put(item::to_item(m)?, None).await?;
                out.created += 1;
            }
        }
    }
    Ok(out)
}

/// Every member, bucket by bucket.
pub async fn members<S: Store + ?Sized>(store: &S) -> Result<Vec<Member>, StoreError> {
    let mut out = Vec::new();
    for b in 0..BUCKETS {
        for it in query_all(store, item::bucket_query(b)).await? {
            out.push(item::from_item(&it)?);
        }
    }
    Ok(out)
}
