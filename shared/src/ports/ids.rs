//! The id port: unique ids and unguessable random bytes.

/// Unique ids and unguessable random bytes.
pub trait IdGen: Send + Sync {
    /// A new unique, time-ordered id (e.g. UUIDv7).
    fn new_id(&self) -> String;
    /// Cryptographically random bytes (coupon codes).
    fn random_12(&self) -> [u8; 12];
    /// A random number from [`IdGen::random_12`]: backoff jitter, shard order.
    fn random_u64(&self) -> u64 {
        let b = self.random_12();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}
