//! Hot point reads served on the calling thread.
//!
//! sqlx runs each SQLite connection on a worker thread of its own, so every query is a
//! round trip between threads: two context switches on a busy core, which cost more
//! than the lookup itself. The read every send makes (room + membership, one indexed
//! lookup) runs here instead, synchronously, on a few read-only connections owned by
//! the store. Each sits behind a mutex that is only ever *tried*: when all are busy
//! the caller falls back to the sqlx read pool, so a lookup never waits for a lock,
//! and in WAL mode a reader never waits for the writer.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags};

use crate::store::{StoreError, StoreResult};

pub(super) struct Direct {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

/// Connections: one per runtime worker is enough; a spare covers blocking threads.
const CONNECTIONS: usize = 3;

pub(super) fn err(e: rusqlite::Error) -> StoreError {
    StoreError::Other(anyhow::Error::new(e).context("direct SQLite read"))
}

impl Direct {
    /// Opens read-only connections to the (already migrated) database file.
    pub fn open(path: &Path) -> anyhow::Result<Direct> {
        let mut conns = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.set_prepared_statement_cache_capacity(16);
            conns.push(Mutex::new(c));
        }
        Ok(Direct {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free connection; None when every connection is in use.
    pub fn try_with<T>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> Option<StoreResult<T>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.conns.len())
            .find_map(|i| self.conns[(start + i) % self.conns.len()].try_lock())
            .map(|conn| f(&conn))
    }
}
