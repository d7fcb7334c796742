//! Fresh databases for the conformance cases: a SQLite file in a temporary folder, or
//! a PostgreSQL database created for the test and dropped afterwards.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::time::Duration;

use hubbub::store::Store;
use hubbub::store::postgres::PostgresStore;
use hubbub::store::sqlite::SqliteStore;
use sqlx::Connection;

pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// No case may hang the suite (a lock-order deadlock would otherwise wait forever).
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// At most this many PostgreSQL cases run at once, whatever `--test-threads` is: each
/// holds up to 2 × `PG_POOL` connections and the server allows ~100.
static PG_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
const PG_POOL: u32 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// What a case gets: the store, plus a second node on the same database.
pub struct Backend {
    pub kind: Kind,
    pub store: Arc<dyn Store>,
    /// An independent store on the same database, as a second server node would
    /// open it (its own pool). SQLite serves one node: there it is `store` itself.
    pub node2: Arc<dyn Store>,
    url: String,
}

impl Backend {
    /// Opens the same database again (a restarted node): migrations must be a no-op.
    pub async fn reopen(&self) -> Arc<dyn Store> {
        match self.kind {
            Kind::Sqlite => Arc::new(SqliteStore::open(&self.url).await.expect("reopen SQLite")),
            Kind::Postgres => open_pg(&self.url).await,
        }
    }

    /// `store` for even `i`, `node2` for odd: spreads concurrent work over both nodes.
    pub fn node(&self, i: usize) -> Arc<dyn Store> {
        if i.is_multiple_of(2) {
            self.store.clone()
        } else {
            self.node2.clone()
        }
    }
}

/// A second, empty database (an import target), of either kind; closed and removed
/// by `close`.
pub struct Fresh {
    pub kind: Kind,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TestDatabase>,
}

impl Fresh {
    /// A fresh empty store; None for PostgreSQL when `HUBBUB_TEST_DATABASE_URL` is not
    /// set. It takes no `PG_SLOTS` permit (a PostgreSQL case holding one may ask for
    /// it) and so keeps its pool small.
    pub async fn open(kind: Kind) -> Option<Fresh> {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
                let store = Arc::new(SqliteStore::open(&url).await.expect("open SQLite"));
                Some(Fresh {
                    kind,
                    store,
                    _dir: Some(dir),
                    _db: None,
                })
            }
            Kind::Postgres => {
                let admin_url = std::env::var("HUBBUB_TEST_DATABASE_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty())?;
                let db = TestDatabase::create(&admin_url).await;
                let store = Arc::new(
                    PostgresStore::open(&db.url, 2, Duration::from_secs(30))
                        .await
                        .expect("open PostgreSQL store"),
                );
                Some(Fresh {
                    kind,
                    store,
                    _dir: None,
                    _db: Some(db),
                })
            }
        }
    }

    pub async fn close(self) {
        self.store.close().await;
    }
}

async fn run_case(case: impl FnOnce(Backend) -> CaseFuture, backend: Backend) {
    let (a, b) = (backend.store.clone(), backend.node2.clone());
    let kind = backend.kind;
    tokio::time::timeout(CASE_TIMEOUT, case(backend))
        .await
        .unwrap_or_else(|_| panic!("{kind:?} case timed out after {CASE_TIMEOUT:?}"));
    a.close().await;
    b.close().await;
}

pub async fn run_sqlite(case: impl FnOnce(Backend) -> CaseFuture) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("hubbub.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("open SQLite"));
    let backend = Backend {
        kind: Kind::Sqlite,
        node2: store.clone(),
        store,
        url,
    };
    run_case(case, backend).await;
    drop(dir);
}

pub async fn run_postgres(case: impl FnOnce(Backend) -> CaseFuture) {
    let admin_url = match std::env::var("HUBBUB_TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            static SKIP: Once = Once::new();
            SKIP.call_once(|| {
                // Straight to stderr, past the test harness's output capture.
                let _ = writeln!(
                    std::io::stderr(),
                    "postgres store tests skipped: HUBBUB_TEST_DATABASE_URL not set"
                );
            });
            return;
        }
    };
    let _slot = PG_SLOTS.acquire().await.expect("semaphore");
    let db = TestDatabase::create(&admin_url).await;
    let store = open_pg(&db.url).await;
    let node2 = open_pg(&db.url).await;
    let backend = Backend {
        kind: Kind::Postgres,
        store,
        node2,
        url: db.url.clone(),
    };
    run_case(case, backend).await;
    drop(db);
}

async fn open_pg(url: &str) -> Arc<dyn Store> {
    Arc::new(
        PostgresStore::open(url, PG_POOL, Duration::from_secs(30))
            .await
            .expect("open PostgreSQL store"),
    )
}

/// `postgres://u@h:5432/test?x=y` with the database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.find('?') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(i) => &base[..authority + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}

/// A database of its own for one test; dropped (`WITH (FORCE)`) when this guard goes,
/// including while a failed test unwinds.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create(admin_url: &str) -> TestDatabase {
        let name = format!("hubbub_test_{:016x}", rand::random::<u64>());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .expect("connect to HUBBUB_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        TestDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside the test's runtime (or while it unwinds): do the async
        // work on a thread with a runtime of its own.
        let result = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                // Closed pools have said goodbye, but their server processes may take a
                // moment to exit; give them that moment before forcing.
                for _ in 0..40 {
                    let (n,): (i64,) =
                        sqlx::query_as("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1")
                            .bind(&name)
                            .fetch_one(&mut conn)
                            .await
                            .map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join()
        .unwrap_or_else(|_| Err("drop thread panicked".into()));
        if let Err(e) = result {
            let _ = writeln!(
                std::io::stderr(),
                "warning: cannot drop test database {}: {e}",
                self.name
            );
        }
    }
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/test?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgresql://u:p@h", "x"),
        "postgresql://u:p@h/x"
    );
}
