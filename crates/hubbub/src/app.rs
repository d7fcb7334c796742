//! Startup: settings → store → hub → domain → HTTP server. `main` is a few lines;
//! tests and the CLI build the same `Application`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::serve::ListenerExt;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::cluster::Cluster;
use crate::config::Settings;
use crate::domain::Chat;
use crate::hub::Hub;
use crate::store::Store;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;

/// Opens the store named by the settings' database URL.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        if settings.redis_url.is_some() {
            bail!(
                "--redis-url needs a PostgreSQL database: several nodes cannot share one \
                 SQLite file. Use --database-url postgres://… or drop --redis-url."
            );
        }
        if settings.database_url.is_none() {
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!("cannot create data dir {}", settings.data_dir.display())
            })?;
        }
        Ok(Arc::new(SqliteStore::open(&url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(
            PostgresStore::open(
                &url,
                settings.db_max_connections,
                std::time::Duration::from_millis(settings.db_acquire_timeout_ms),
            )
            .await?,
        ))
    } else {
        bail!(
            "unsupported database URL {}: use sqlite:// or postgres://",
            crate::config::mask_url(&url)
        )
    }
}

pub struct Application {
    listener: TcpListener,
    chat: Arc<Chat>,
    metrics: Option<PrometheusHandle>,
}

impl Application {
    pub async fn build(
        settings: Settings,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<Application> {
        let store = open_store(&settings).await?;
        let hub = Hub::new(settings.outbound_queue);
        hub.attach_sequencer(crate::domain::messages::gap_filler(store.clone()));
        let cluster = match &settings.redis_url {
            Some(url) => {
                let (cluster, bus, inbound) = Cluster::start(url, &settings.redis_prefix).await?;
                hub.attach_bus(bus);
                Some((cluster, inbound))
            }
            None => None,
        };
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let (cluster, inbound) = match cluster {
            Some((c, i)) => (Some(c), Some(i)),
            None => (None, None),
        };
        let chat = Chat::new(store, hub, Arc::new(settings), cluster);
        if let Some(inbound) = inbound {
            chat.spawn_cluster_inbound(inbound);
        }
        chat.bootstrap().await?;
        chat.spawn_maintenance();
        Ok(Application {
            listener,
            chat,
            metrics,
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn chat(&self) -> Arc<Chat> {
        self.chat.clone()
    }

    /// Serves until `shutdown` completes, then stops accepting, closes every
    /// WebSocket with 1001 ("going away") and waits for in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let hub = self.chat.hub.clone();
        let app = crate::http::router(crate::http::AppState {
            chat: self.chat.clone(),
            metrics: self.metrics,
        });
        // Chat frames are small and latency-bound: never let Nagle's algorithm hold
        // one back waiting for the peer's delayed ACK (~40 ms).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing connections");
            hub.shutdown_token().cancel();
        })
        .await
        .context("server error")?;
        // Upgraded WebSockets outlive the HTTP server: give them a moment to send
        // their close frames, then flush the database.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.chat.hub.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.chat.store.close().await;
        tracing::info!("shutdown complete");
        Ok(())
    }
}
