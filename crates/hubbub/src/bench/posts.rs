//! `hubbub bench posts`: K closed-loop senders in one fresh room; each sends its next
//! message as soon as the previous one is acknowledged (an ack means durable,
//! guarantee 1). Reports acknowledged messages per second and ack latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use futures_util::SinkExt;
use parking_lot::Mutex;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::net::{self, Http, SETUP_TIMEOUT, Target};
use super::stats::{self, CpuMeter, Hist};
use super::{Output, human, r1, r3};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    Gateway,
    Rest,
}

#[derive(Args, Debug, Clone)]
pub struct PostsArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Concurrent senders (each a guest with its own session).
    #[arg(long, default_value_t = 16)]
    pub senders: usize,

    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Send over the gateway (`send` frames) or REST (`POST /rooms/{id}/messages`).
    #[arg(long, value_enum, default_value = "gateway")]
    pub via: Via,

    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,

    /// The server's pid, to report its CPU use (optional).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Drive the lean yardstick server (gateway only; nothing is durable there).
    #[arg(long)]
    pub lean: bool,
}

struct Counters {
    acked: AtomicU64,
    errors: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Counters {
    fn error(&self, e: String) {
        self.errors.fetch_add(1, Relaxed);
        let mut s = self.samples.lock();
        if s.len() < 5 {
            s.push(e.chars().take(300).collect());
        }
    }
}

fn body(run: &str, idx: usize, seq: u64, bytes: usize) -> String {
    let mut b = format!("posts|{run}|{idx}|{seq}|");
    while b.len() < bytes {
        b.push('x');
    }
    b
}

pub(crate) async fn run(args: PostsArgs, out: Output) -> anyhow::Result<()> {
    if args.senders == 0 || args.duration <= 0.0 {
        bail!("need --senders >= 1 and a positive --duration");
    }
    super::raise_nofile();
    let target = Target::parse(&args.url).await?;
    let http = Http::new(&target);
    let run = super::run_id();
    let setup_started = Instant::now();
    let (room, tokens) = if args.lean {
        if args.via != Via::Gateway {
            bail!("--lean works only --via gateway");
        }
        let tokens: Vec<String> = (0..args.senders)
            .map(|i| format!("lean-{run}-{i}"))
            .collect();
        (format!("lean-posts-{run}"), tokens)
    } else {
        let account = http
            .register(
                &format!("bench-{run}"),
                &format!("pw-{run}-{}", super::run_id()),
            )
            .await?;
        let room = http.create_room(&account, &format!("posts-{run}")).await?;
        let mut tokens = Vec::new();
        for i in 0..args.senders {
            let (t, _) = http.guest(&format!("p{run}-{i}")).await?;
            http.join(&t, &room).await?;
            tokens.push(t);
        }
        (room, tokens)
    };
    let mut sockets = Vec::new();
    if args.via == Via::Gateway {
        for t in &tokens {
            let mut ws = tokio::time::timeout(
                SETUP_TIMEOUT,
                net::connect(&target, &target.ws_url(t), None, net::ws_config(16 * 1024)),
            )
            .await
            .context("connect timed out")??;
            net::read_ready(&mut ws).await?;
            if args.lean {
                let join = format!(r#"{{"type":"join_room","req":0,"room_id":"{room}"}}"#);
                ws.send(WsMessage::Text(join.into())).await?;
                if let Err(e) = net::read_reply(&mut ws, 0).await? {
                    bail!("join_room refused: {e}");
                }
            }
            sockets.push(ws);
        }
    }
    let setup_s = setup_started.elapsed().as_secs_f64();

    let counters = Arc::new(Counters {
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        samples: Mutex::new(Vec::new()),
    });
    let running = Arc::new(AtomicUsize::new(args.senders));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.duration);
    let server_cpu = args.server_pid.map(|p| CpuMeter::start(p.to_string()));
    let gen_cpu = CpuMeter::start("self");
    let machine = stats::MachineMeter::start();
    let progress = {
        let c = counters.clone();
        let r = running.clone();
        out.progress(move || {
            let t = started.elapsed().as_secs_f64();
            let a = c.acked.load(Relaxed) as f64;
            format!(
                "posts t={t:.0}s  acked {a} ({}/s)  errors {}  senders {}",
                human(a / t.max(0.001)),
                c.errors.load(Relaxed),
                r.load(Relaxed)
            )
        })
    };
    let mut tasks = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let (c, run, room, running) =
            (counters.clone(), run.clone(), room.clone(), running.clone());
        let bytes = args.body_bytes;
        let task = match args.via {
            Via::Gateway => {
                let mut ws = sockets.remove(0);
                tokio::spawn(async move {
                    let mut h = stats::new_hist();
                    let mut seq = 0u64;
                    while Instant::now() < deadline {
                        seq += 1;
                        let frame = format!(
                            r#"{{"type":"send","req":{seq},"room_id":"{room}","client_id":"{run}-{i}-{seq}","body":"{}"}}"#,
                            body(&run, i, seq, bytes)
                        );
                        let t = Instant::now();
                        if let Err(e) = ws.send(WsMessage::Text(frame.into())).await {
                            c.error(format!("write: {e}"));
                            break;
                        }
                        match net::read_reply(&mut ws, seq).await {
                            Ok(Ok(())) => {
                                stats::record(&mut h, t.elapsed().as_micros() as u64);
                                c.acked.fetch_add(1, Relaxed);
                            }
                            Ok(Err(text)) => c.error(text),
                            Err(e) => {
                                c.error(format!("{e:#}"));
                                break;
                            }
                        }
                    }
                    running.fetch_sub(1, Relaxed);
                    let _ = ws.close(None).await;
                    h
                })
            }
            Via::Rest => {
                let (http, token) = (http.clone(), token.clone());
                tokio::spawn(async move {
                    let mut h = stats::new_hist();
                    let mut seq = 0u64;
                    let path = format!("/api/v1/rooms/{room}/messages");
                    while Instant::now() < deadline {
                        seq += 1;
                        let b = json!({"body": body(&run, i, seq, bytes), "client_id": format!("{run}-{i}-{seq}")});
                        let t = Instant::now();
                        match http.post(&path, Some(&token), &b).await {
                            Ok(_) => {
                                stats::record(&mut h, t.elapsed().as_micros() as u64);
                                c.acked.fetch_add(1, Relaxed);
                            }
                            Err(e) => c.error(format!("{e:#}")),
                        }
                    }
                    running.fetch_sub(1, Relaxed);
                    h
                })
            }
        };
        tasks.push(task);
    }
    let mut hist: Hist = stats::new_hist();
    for t in tasks {
        if let Ok(h) = t.await {
            let _ = hist.add(&h);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu_pct = server_cpu.and_then(|c| c.percent());
    let gen_cpu_pct = gen_cpu.percent();
    let machine_pct = machine.busy_percent();
    drop(progress);
    let acked = counters.acked.load(Relaxed);
    let errors = counters.errors.load(Relaxed);
    let samples = counters.samples.lock().clone();
    let via = match args.via {
        Via::Gateway => "gateway",
        Via::Rest => "rest",
    };
    let j = json!({
        "mode": "posts",
        "url": args.url,
        "lean": args.lean,
        "via": via,
        "senders": args.senders,
        "duration_s": args.duration,
        "body_bytes": args.body_bytes,
        "setup_s": r3(setup_s),
        "elapsed_s": r3(elapsed),
        "acked": acked,
        "errors": errors,
        "messages_per_s": r1(acked as f64 / elapsed),
        "ack_latency_ms": stats::summary(&hist),
        "server_cpu_pct": server_cpu_pct,
        "generator_cpu_pct": gen_cpu_pct,
        "machine_cpu_pct": machine_pct,
        "loadavg_1m": stats::loadavg(),
        "error_samples": samples,
    });
    let mut table = format!(
        "hubbub bench posts --via {via}: {} closed-loop senders for {} s\n",
        args.senders, args.duration
    );
    table.push_str(&format!(
        "  acked {acked} ({}/s), errors {errors}\n  ack latency p50 / p99 / p99.9 / max: {} ms\n",
        r1(acked as f64 / elapsed),
        stats::line(&hist)
    ));
    if let Some(c) = server_cpu_pct {
        table.push_str(&format!("  server cpu {c:.0}%"));
    }
    table.push_str(&format!(
        "  generator cpu {:.0}%\n",
        gen_cpu_pct.unwrap_or_default()
    ));
    for e in &samples {
        table.push_str(&format!("  error: {e}\n"));
    }
    out.finish(&j, table.trim_end());
    Ok(())
}
