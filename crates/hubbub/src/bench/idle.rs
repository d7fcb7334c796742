//! `hubbub bench idle`: holds N idle authenticated gateway connections and reports
//! connect times and the server's resident memory per connection.
//!
//! Connections share a few guest sessions (a user may have many connections). When
//! one source address would run out of ephemeral ports, sockets are bound to further
//! loopback addresses (127.0.0.2, 127.0.0.3, …; all of 127/8 is local on Linux).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::net::{self, Http, SETUP_TIMEOUT, Target};
use super::stats::{self, Hist};
use super::{Output, human, r1, r3};

#[derive(Args, Debug, Clone)]
pub struct IdleArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,

    /// The server's pid, for its VmRSS (default: the `hubbub_process_resident_memory_bytes`
    /// gauge of `GET /metrics`).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Connections per guest session.
    #[arg(long, default_value_t = 100)]
    pub per_session: usize,

    /// Connects in flight at once.
    #[arg(long, default_value_t = 128)]
    pub concurrency: usize,

    /// Seconds to hold the connections after the last one opened (disconnects are
    /// counted meanwhile).
    #[arg(long, default_value_t = 10.0)]
    pub hold: f64,

    /// Connections per source address before moving to the next one
    /// [default: the size of the ephemeral port range minus a margin].
    #[arg(long)]
    pub per_source: Option<usize>,

    /// Drive the lean yardstick server (tokens are made up).
    #[arg(long)]
    pub lean: bool,
}

struct Shared {
    open: AtomicUsize,
    connected: AtomicUsize,
    failed: AtomicUsize,
    frames: AtomicU64,
    stopping: AtomicBool,
    disconnects: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
    /// Index of the extra source address in use after EADDRNOTAVAIL (0: none).
    source_bump: AtomicUsize,
}

fn ephemeral_ports() -> usize {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<usize>().ok());
            let (lo, hi) = (it.next()??, it.next()??);
            Some(hi.saturating_sub(lo) + 1)
        })
        .unwrap_or(28_000)
}

/// Source address number `n`: 0 is the default (no bind), then 127.0.0.2, 127.0.0.3, …
fn source(n: usize) -> Option<IpAddr> {
    (n > 0).then(|| {
        let k = n + 1;
        IpAddr::V4(Ipv4Addr::new(127, (k >> 16) as u8, (k >> 8) as u8, k as u8))
    })
}

/// The server's resident memory and where it came from.
async fn server_rss(pid: Option<u32>, http: &Http) -> (Option<u64>, String) {
    if let Some(pid) = pid {
        return (
            stats::rss_of(&pid.to_string()),
            format!("/proc/{pid}/status VmRSS"),
        );
    }
    match http.metrics().await {
        Some(m) => match net::gauge(&m, "hubbub_process_resident_memory_bytes") {
            Some(v) => (
                Some(v as u64),
                "GET /metrics hubbub_process_resident_memory_bytes".into(),
            ),
            None => (
                None,
                "GET /metrics has no hubbub_process_resident_memory_bytes gauge; pass --server-pid"
                    .into(),
            ),
        },
        None => (None, "GET /metrics unavailable; pass --server-pid".into()),
    }
}

async fn server_connections(http: &Http) -> Option<f64> {
    let m = http.metrics().await?;
    net::gauge(&m, "hubbub_connections_open").or_else(|| net::gauge(&m, "hubbub_connections"))
}

pub(crate) async fn run(args: IdleArgs, out: Output) -> anyhow::Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let nofile = super::raise_nofile();
    if (nofile as usize) < args.connections + 64 {
        out.note(&format!(
            "warning: open-file limit {nofile} is below {} connections; raise the hard limit (ulimit -Hn)",
            args.connections
        ));
    }
    let target = Target::parse(&args.url).await?;
    let http = Http::new(&target);
    let run = super::run_id();
    let loopback = target.addr.ip().is_loopback();
    let per_source = args
        .per_source
        .unwrap_or_else(|| ephemeral_ports().saturating_sub(2000).max(1000));
    let sources_planned = if loopback {
        args.connections.div_ceil(per_source)
    } else {
        1
    };

    // Sessions.
    let per_session = args.per_session.max(1);
    let n_sessions = args.connections.div_ceil(per_session);
    let tokens: Vec<String> = if args.lean {
        (0..n_sessions).map(|i| format!("lean-{run}-{i}")).collect()
    } else {
        let mut t = Vec::with_capacity(n_sessions);
        for i in 0..n_sessions {
            t.push(
                http.guest(&format!("i{run}-{i}"))
                    .await
                    .context("creating guests")?
                    .0,
            );
        }
        t
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, rss_source) = server_rss(args.server_pid, &http).await;

    let shared = Arc::new(Shared {
        open: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        frames: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        disconnects: Mutex::new(Vec::new()),
        errors: Mutex::new(Vec::new()),
        source_bump: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let progress = {
        let s = shared.clone();
        let n = args.connections;
        out.progress(move || {
            let c = s.connected.load(Relaxed);
            format!(
                "idle: connected {c}/{n} ({}/s)  failed {}  open {}",
                human(c as f64 / started.elapsed().as_secs_f64().max(0.001)),
                s.failed.load(Relaxed),
                s.open.load(Relaxed)
            )
        })
    };
    let config = net::ws_config(4 * 1024);
    let hists: Vec<Hist> = futures_util::stream::iter(0..args.connections)
        .map(|i| {
            let url = target.ws_url(&tokens[i % n_sessions]);
            let (target, shared) = (&target, shared.clone());
            async move {
                let mut h = stats::new_hist();
                let t = Instant::now();
                let planned = if loopback { i / per_source } else { 0 };
                let mut tries = 0;
                let result = loop {
                    let n = planned.max(shared.source_bump.load(Relaxed));
                    let r = tokio::time::timeout(SETUP_TIMEOUT, async {
                        let mut ws = net::connect(target, &url, source(n), config).await?;
                        net::read_ready(&mut ws).await?;
                        anyhow::Ok(ws)
                    })
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("timed out")));
                    // Out of local ports on this source address: move to the next one.
                    let no_ports = r.as_ref().err().is_some_and(|e| {
                        e.chain().any(|c| {
                            c.downcast_ref::<std::io::Error>()
                                .is_some_and(|io| io.raw_os_error() == Some(libc::EADDRNOTAVAIL))
                        })
                    });
                    if no_ports && loopback && tries < 8 {
                        tries += 1;
                        let _ = shared
                            .source_bump
                            .compare_exchange(n, n + 1, Relaxed, Relaxed);
                        continue;
                    }
                    break r;
                };
                match result {
                    Ok(ws) => {
                        stats::record(&mut h, t.elapsed().as_micros() as u64);
                        shared.connected.fetch_add(1, Relaxed);
                        shared.open.fetch_add(1, Relaxed);
                        tokio::spawn(hold(ws, shared));
                    }
                    Err(e) => {
                        shared.failed.fetch_add(1, Relaxed);
                        let mut errs = shared.errors.lock();
                        if errs.len() < 5 {
                            errs.push(format!("connection {i}: {e:#}"));
                        }
                    }
                }
                h
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let connect_s = started.elapsed().as_secs_f64();
    let mut hist = stats::new_hist();
    for h in &hists {
        let _ = hist.add(h);
    }
    drop(hists);
    drop(progress);

    // Let the server settle (connect-time events, allocator), then measure.
    let settle = Instant::now();
    let mut last = shared.frames.load(Relaxed);
    let mut quiet_since = Instant::now();
    while settle.elapsed() < Duration::from_secs(15)
        && quiet_since.elapsed() < Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = shared.frames.load(Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let (rss_after, _) = server_rss(args.server_pid, &http).await;
    let server_conns = server_connections(&http).await;

    let hold_started = Instant::now();
    {
        let s = shared.clone();
        let hold_s = args.hold;
        let _p = out.progress(move || {
            format!(
                "idle: holding {} connections  {:.0}/{hold_s} s  closed by server {}",
                s.open.load(Relaxed),
                hold_started.elapsed().as_secs_f64(),
                s.disconnects.lock().len()
            )
        });
        tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    }
    let (rss_end, _) = server_rss(args.server_pid, &http).await;
    shared.stopping.store(true, Relaxed);

    let connected = shared.connected.load(Relaxed);
    let failed = shared.failed.load(Relaxed);
    let disconnects = shared.disconnects.lock().clone();
    let errors = shared.errors.lock().clone();
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if connected > 0 => Some((a as f64 - b as f64) / connected as f64),
        _ => None,
    };
    let sources_used = if loopback {
        (connected.saturating_sub(1) / per_source).max(shared.source_bump.load(Relaxed)) + 1
    } else {
        1
    };
    let j = json!({
        "mode": "idle",
        "url": args.url,
        "lean": args.lean,
        "connections": args.connections,
        "sessions": n_sessions,
        "concurrency": args.concurrency,
        "connected": connected,
        "failed": failed,
        "connect_total_s": r3(connect_s),
        "connects_per_s": r1(connected as f64 / connect_s),
        "connect_ms": stats::summary(&hist),
        "server_rss_before_bytes": rss_before,
        "server_rss_after_bytes": rss_after,
        "server_rss_end_bytes": rss_end,
        "server_bytes_per_connection": per_conn.map(|x| x.round()),
        "server_kib_per_connection": per_conn.map(|x| r1(x / 1024.0)),
        "rss_source": rss_source,
        "server_connections_gauge": server_conns,
        "closed_during_hold": disconnects.len(),
        "hold_s": args.hold,
        "source_addresses": sources_used,
        "source_addresses_planned": sources_planned,
        "generator_rss_bytes": stats::rss_of("self"),
        "loadavg_1m": stats::loadavg(),
        "generator_nofile": nofile,
        "error_samples": errors,
    });
    let mut table = format!(
        "hubbub bench idle{}: {} connections ({} sessions, {} at a time)\n",
        if args.lean { " --lean" } else { "" },
        args.connections,
        n_sessions,
        args.concurrency
    );
    table.push_str(&format!(
        "  connected {connected}, failed {failed} in {connect_s:.2} s ({}/s)\n  connect p50 / p99 / p99.9 / max: {} ms\n",
        human(connected as f64 / connect_s),
        stats::line(&hist)
    ));
    let mib = |b: Option<u64>| {
        b.map(|b| format!("{:.1} MiB", b as f64 / 1048576.0))
            .unwrap_or("?".into())
    };
    table.push_str(&format!(
        "  server RSS before {} → after {} (end of hold {}); per connection: {}\n  ({rss_source})\n",
        mib(rss_before),
        mib(rss_after),
        mib(rss_end),
        per_conn.map(|x| format!("{:.1} KiB", x / 1024.0)).unwrap_or("unknown".into())
    ));
    table.push_str(&format!(
        "  closed by the server during a {} s hold: {}\n",
        args.hold,
        disconnects.len()
    ));
    if !disconnects.is_empty() {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for d in &disconnects {
            *counts.entry(d.as_str()).or_default() += 1;
        }
        table.push_str(&format!("  close reasons: {counts:?}\n"));
    }
    for e in &errors {
        table.push_str(&format!("  error: {e}\n"));
    }
    out.finish(&j, table.trim_end());
    Ok(())
}

/// Holds one connection open, reading (which also answers the server's pings).
async fn hold(mut ws: net::Ws, shared: Arc<Shared>) {
    let reason = loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(_))) => {
                shared.frames.fetch_add(1, Relaxed);
            }
            Some(Ok(WsMessage::Close(c))) => {
                break c
                    .map(|c| format!("closed by server: {} {}", u16::from(c.code), c.reason))
                    .unwrap_or_else(|| "closed by server".into());
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("read error: {e}"),
            None => break "connection ended".into(),
        }
    };
    shared.open.fetch_sub(1, Relaxed);
    if !shared.stopping.load(Relaxed) {
        shared.disconnects.lock().push(reason);
    }
}
