//! Sessions stored under a digest of their id: tower-sessions' PostgreSQL store keeps a
//! session's id as it is, so whoever read a recent copy of the table (a backup, a dump, a
//! replica's disk) could present any live session as a cookie. Here the table holds only
//! SHA-256 of the id (its first 128 bits), like API tokens and reset links; the id itself
//! exists only in the browser's cookie.

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use switchboard_db::PgPool;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Result, SessionStore};
use tower_sessions_sqlx_store::PostgresStore;

#[derive(Clone, Debug)]
pub struct DigestStore(PostgresStore);

impl DigestStore {
    pub fn new(pool: PgPool) -> Self {
        DigestStore(PostgresStore::new(pool))
    }

    /// The table's own store (schema creation, deleting expired rows: neither reads ids).
    pub fn inner(&self) -> &PostgresStore {
        &self.0
    }
}

/// The key a session is stored under.
pub fn digest(id: &Id) -> Id {
    let d = Sha256::digest(id.0.to_le_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    Id(i128::from_le_bytes(first))
}

fn stored(record: &Record) -> Record {
    Record {
        id: digest(&record.id),
        ..record.clone()
    }
}

#[async_trait]
impl SessionStore for DigestStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A new random id until its digest is free (a collision of 128 random bits is
        // not expected; the loop is what tower-sessions' own `create` does).
        loop {
            let row = stored(record);
            if self.0.load(&row.id).await?.is_none() {
                return self.0.save(&row).await;
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        self.0.save(&stored(record)).await
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        Ok(self.0.load(&digest(id)).await?.map(|mut record| {
            record.id = *id;
            record
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        self.0.delete(&digest(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_stable_and_not_the_id() {
        let id = Id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(digest(&id), digest(&id));
        assert_ne!(digest(&id), id);
        assert_ne!(digest(&id), digest(&Id(id.0 + 1)));
    }
}
