//! `hubbub bench fanout`: C clients in one fresh room, S of them sending at a total
//! open-loop rate R for D seconds; every client records the delivery latency of
//! every message, measured from the message's INTENDED send time (embedded in its
//! body) so a stalled server or generator cannot hide latency (coordinated omission).
//!
//! Body: `hb|<step>|<sender>|<seq>|<intended µs since start>|xxxx…` (padded).
//! A send's `req` is `step << 32 | seq`, so replies need no lookup table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, Stream, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::net::{self, Frame, Http, SETUP_TIMEOUT, Target, Ws};
use super::stats::{self, CpuMeter, Hist};
use super::{Output, human, r1, r3};

#[derive(Args, Debug, Clone)]
pub struct FanoutArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Cluster runs: the non-sending clients connect to this node instead (same
    /// database and Redis), so every delivery crosses the cluster bus.
    #[arg(long)]
    pub receivers_url: Option<String>,

    /// Clients in the room (each with one gateway connection; senders included).
    #[arg(long, default_value_t = 100)]
    pub clients: usize,

    /// How many of the clients send.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,

    /// Total offered rate in messages per second [default: 100; with --sweep: the
    /// starting rate, default 25].
    #[arg(long)]
    pub rate: Option<f64>,

    /// Seconds of sending [default: 10; with --sweep: per step, default 5].
    #[arg(long)]
    pub duration: Option<f64>,

    /// Raise the rate step by step until p99 reaches --p99-limit-ms or anything is lost.
    #[arg(long)]
    pub sweep: bool,

    /// Sweep: rate multiplier between steps.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,

    /// Sweep: the p99 delivery latency (ms) a rate must stay under.
    #[arg(long, default_value_t = 100.0)]
    pub p99_limit_ms: f64,

    /// Sweep: at most this many steps.
    #[arg(long, default_value_t = 25)]
    pub max_steps: usize,

    /// Drive the lean yardstick server (`hubbub bench lean-server`): no REST setup,
    /// each client joins a fixed room over the gateway.
    #[arg(long)]
    pub lean: bool,

    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body_bytes: usize,

    /// Seconds to wait for in-flight acks and deliveries after sending stops.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,

    /// The server's pid, to report its CPU use (optional).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Repeat a step (up to --noisy-retries times) when other processes used more than
    /// this share of a core (percent) during it: a shared machine's noise is not the
    /// server's latency. Needs --server-pid. Every attempt is reported.
    #[arg(long)]
    pub max_foreign_cpu: Option<f64>,

    /// How often a noisy step may be repeated.
    #[arg(long, default_value_t = 3)]
    pub noisy_retries: usize,

    /// Concurrent setup requests and connects.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
}

/// Client read buffer. tungstenite zero-fills the free part of it before every read,
/// so a large one costs a large memset per read; 16 KiB still takes a server batch in
/// a few reads.
const READ_BUFFER: usize = 16 * 1024;

/// State every task of the run shares; counters are for the current step.
struct Shared {
    t0: Instant,
    step: AtomicU32,
    sent: AtomicU64,
    acked: AtomicU64,
    send_errors: AtomicU64,
    delivered: AtomicU64,
    frames: AtomicU64,
    open: AtomicUsize,
    stopping: AtomicBool,
    disconnects: Mutex<Vec<String>>,
    error_samples: Mutex<Vec<String>>,
}

impl Shared {
    #[inline]
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    fn sample_error(&self, text: &str) {
        let mut s = self.error_samples.lock();
        if s.len() < 5 {
            s.push(text.chars().take(300).collect());
        }
    }
}

/// What one client received during the current step.
struct Recv {
    step: u32,
    hist: Hist,
    unique: u64,
    dup: u64,
    stale: u64,
    reordered: u64,
    pos_regress: u64,
    last_pos: i64,
    last_at: u64,
    /// Per sender: which sequence numbers arrived.
    seen: Vec<Vec<u64>>,
    last_seq: Vec<i64>,
}

impl Recv {
    fn new(senders: usize) -> Recv {
        Recv {
            step: 0,
            hist: stats::new_hist(),
            unique: 0,
            dup: 0,
            stale: 0,
            reordered: 0,
            pos_regress: 0,
            last_pos: i64::MIN,
            last_at: 0,
            seen: vec![Vec::new(); senders],
            last_seq: vec![-1; senders],
        }
    }

    fn reset(&mut self, step: u32) {
        self.step = step;
        self.hist.reset();
        self.unique = 0;
        self.dup = 0;
        self.stale = 0;
        self.reordered = 0;
        self.pos_regress = 0;
        self.last_at = 0;
        self.seen.iter_mut().for_each(Vec::clear);
        self.last_seq.iter_mut().for_each(|s| *s = -1);
    }

    fn on_message(&mut self, shared: &Shared, body: &str, pos: Option<i64>) {
        let Some(rest) = body.strip_prefix("hb|") else {
            return;
        };
        let mut it = rest.splitn(5, '|');
        let mut next = || it.next().and_then(|f| f.parse::<u64>().ok());
        let (Some(step), Some(sender), Some(seq), Some(t_us)) = (next(), next(), next(), next())
        else {
            return;
        };
        if let Some(p) = pos {
            // Within a room every member sees one order (guarantee 2).
            if p <= self.last_pos {
                self.pos_regress += 1;
            }
            self.last_pos = self.last_pos.max(p);
        }
        if step != self.step as u64 || sender as usize >= self.seen.len() {
            self.stale += 1;
            return;
        }
        let (sender, seq) = (sender as usize, seq as usize);
        if stats::set_bit(&mut self.seen[sender], seq) {
            self.dup += 1;
            return;
        }
        let now = shared.now_us();
        stats::record(&mut self.hist, now.saturating_sub(t_us));
        self.unique += 1;
        self.last_at = now;
        if (seq as i64) < self.last_seq[sender] {
            self.reordered += 1;
        }
        self.last_seq[sender] = self.last_seq[sender].max(seq as i64);
        shared.delivered.fetch_add(1, Relaxed);
    }
}

/// What one sender sent and had acknowledged during the current step.
struct Sent {
    step: u32,
    /// Intended send time (µs since start) per sequence number.
    intended: Vec<u64>,
    acked: Vec<u64>,
    n_acked: u64,
    n_errors: u64,
    last_ack_at: u64,
    ack_hist: Hist,
    /// How late the generator itself wrote each frame (scheduling lag).
    lag_hist: Hist,
}

impl Sent {
    fn new() -> Sent {
        Sent {
            step: 0,
            intended: Vec::new(),
            acked: Vec::new(),
            n_acked: 0,
            n_errors: 0,
            last_ack_at: 0,
            ack_hist: stats::new_hist(),
            lag_hist: stats::new_hist(),
        }
    }

    fn reset(&mut self, step: u32) {
        self.step = step;
        self.intended.clear();
        self.acked.clear();
        self.n_acked = 0;
        self.n_errors = 0;
        self.last_ack_at = 0;
        self.ack_hist.reset();
        self.lag_hist.reset();
    }

    fn on_reply(&mut self, shared: &Shared, req: u64, ok: bool, text: &str) {
        let (step, seq) = ((req >> 32) as u32, (req & 0xffff_ffff) as usize);
        if step != self.step || seq >= self.intended.len() {
            return;
        }
        if !ok {
            self.n_errors += 1;
            shared.send_errors.fetch_add(1, Relaxed);
            shared.sample_error(text);
            return;
        }
        if stats::set_bit(&mut self.acked, seq) {
            return;
        }
        let now = shared.now_us();
        stats::record(&mut self.ack_hist, now.saturating_sub(self.intended[seq]));
        self.n_acked += 1;
        self.last_ack_at = now;
        shared.acked.fetch_add(1, Relaxed);
    }
}

/// One step of sending for one sender.
struct Plan {
    step: u32,
    start: Instant,
    /// Seconds between this sender's messages, and its first one's offset.
    interval: f64,
    offset: f64,
    end: Instant,
    done: oneshot::Sender<()>,
}

/// Who a sender is and what it sends.
struct Sender {
    idx: usize,
    room: Arc<str>,
    run: Arc<str>,
    body_bytes: usize,
}

/// Everything a run needs after setup.
struct Ctx {
    shared: Arc<Shared>,
    recvs: Vec<Arc<Mutex<Recv>>>,
    sents: Vec<Arc<Mutex<Sent>>>,
    plans: Vec<mpsc::Sender<Plan>>,
    clients: usize,
    senders: usize,
    server_pid: Option<u32>,
}

/// Reads one connection until it closes: deliveries, and (for senders) replies.
async fn read_loop<S>(
    mut stream: S,
    shared: Arc<Shared>,
    recv: Arc<Mutex<Recv>>,
    sent: Option<Arc<Mutex<Sent>>>,
) where
    S: Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin,
{
    let reason = loop {
        match stream.next().await {
            Some(Ok(WsMessage::Text(t))) => {
                shared.frames.fetch_add(1, Relaxed);
                match net::classify(t.as_str()) {
                    Frame::Message { body, pos } => recv.lock().on_message(&shared, body, pos),
                    Frame::Reply { req: Some(req), ok } => {
                        if let Some(s) = &sent {
                            s.lock().on_reply(&shared, req, ok, t.as_str());
                        }
                    }
                    _ => {
                        if t.as_str().starts_with(r#"{"type":"error""#) {
                            shared.sample_error(t.as_str());
                        }
                    }
                }
            }
            Some(Ok(WsMessage::Close(c))) => {
                break match c {
                    Some(c) => format!("closed by server: {} {}", u16::from(c.code), c.reason),
                    None => "closed by server (no code)".to_string(),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("read error: {e}"),
            None => break "connection ended".to_string(),
        }
    };
    shared.open.fetch_sub(1, Relaxed);
    if !shared.stopping.load(Relaxed) {
        shared.disconnects.lock().push(reason);
    }
}

/// Sends on one connection following each plan's open-loop schedule.
async fn write_loop(
    mut sink: SplitSink<Ws, WsMessage>,
    mut plans: mpsc::Receiver<Plan>,
    shared: Arc<Shared>,
    sent: Arc<Mutex<Sent>>,
    who: Sender,
) {
    let Sender {
        idx,
        room,
        run,
        body_bytes,
    } = who;
    let mut broken = false;
    while let Some(plan) = plans.recv().await {
        let due =
            |k: u64| plan.start + Duration::from_secs_f64(plan.offset + plan.interval * k as f64);
        let mut k = 0u64;
        while !broken && due(k) < plan.end {
            tokio::time::sleep_until(due(k).into()).await;
            let now = Instant::now();
            // Everything already due goes out in one flush.
            let mut n = 0;
            while n < 256 && due(k) <= now && due(k) < plan.end {
                let t = due(k);
                let t_us = t.duration_since(shared.t0).as_micros() as u64;
                let frame = send_frame(plan.step, idx, k, t_us, &room, &run, body_bytes);
                {
                    let mut s = sent.lock();
                    s.intended.push(t_us);
                    stats::record(&mut s.lag_hist, now.duration_since(t).as_micros() as u64);
                }
                if sink.feed(WsMessage::Text(frame.into())).await.is_err() {
                    broken = true;
                    break;
                }
                shared.sent.fetch_add(1, Relaxed);
                k += 1;
                n += 1;
            }
            if !broken && sink.flush().await.is_err() {
                broken = true;
            }
        }
        let _ = plan.done.send(());
    }
}

fn send_frame(
    step: u32,
    idx: usize,
    seq: u64,
    t_us: u64,
    room: &str,
    run: &str,
    body_bytes: usize,
) -> String {
    let req = ((step as u64) << 32) | seq;
    let mut body = format!("hb|{step}|{idx}|{seq}|{t_us}|");
    while body.len() < body_bytes {
        body.push('x');
    }
    format!(
        r#"{{"type":"send","req":{req},"room_id":"{room}","client_id":"{run}-{step}-{idx}-{seq}","body":"{body}"}}"#
    )
}

pub(crate) async fn run(args: FanoutArgs, out: Output) -> anyhow::Result<()> {
    if args.clients == 0 || args.senders == 0 || args.senders > args.clients {
        bail!("need 1 <= --senders <= --clients");
    }
    let rate = args.rate.unwrap_or(if args.sweep { 25.0 } else { 100.0 });
    let duration = args.duration.unwrap_or(if args.sweep { 5.0 } else { 10.0 });
    if rate <= 0.0 || duration <= 0.0 {
        bail!("--rate and --duration must be positive");
    }
    let nofile = super::raise_nofile();
    if (nofile as usize) < args.clients + 64 {
        out.note(&format!(
            "warning: open-file limit {nofile} is low for {} clients",
            args.clients
        ));
    }
    let target = Target::parse(&args.url).await?;
    let setup_started = Instant::now();
    let ctx = setup(&args, &target, out).await?;
    let setup_s = setup_started.elapsed().as_secs_f64();

    let mut params = json!({
        "mode": "fanout",
        "url": args.url,
        "lean": args.lean,
        "clients": args.clients,
        "senders": args.senders,
        "body_bytes": args.body_bytes,
        "setup_s": r3(setup_s),
    });
    let mut table = String::new();
    if !args.sweep {
        let mut id = 0;
        let r = measure(&ctx, &args, 1, &mut id, rate, duration, out).await;
        let mut json = params;
        json["rate"] = json!(rate);
        json["duration_s"] = json!(duration);
        merge(&mut json, &r.json);
        table.push_str(&format!(
            "hubbub bench fanout{}: {} clients, {} senders, {rate} msg/s for {duration} s\n",
            if args.lean { " --lean" } else { "" },
            args.clients,
            args.senders
        ));
        table.push_str(&step_table(std::slice::from_ref(&r)));
        table.push_str(&r.notes());
        ctx.shared.stopping.store(true, Relaxed);
        out.finish(&json, &table);
        return Ok(());
    }

    let mut steps: Vec<StepResult> = Vec::new();
    let mut best: Option<usize> = None;
    let mut stop_reason = String::from("reached --max-steps");
    let mut r_now = rate;
    let mut id = 0;
    for step in 1..=args.max_steps as u32 {
        let r = measure(&ctx, &args, step, &mut id, r_now, duration, out).await;
        let failed = r.failure(args.p99_limit_ms);
        steps.push(r);
        match failed {
            None => best = Some(steps.len() - 1),
            Some(why) => {
                stop_reason = format!("at {} msg/s: {why}", r1(r_now));
                break;
            }
        }
        if ctx.shared.open.load(Relaxed) == 0 {
            stop_reason = "every connection closed".into();
            break;
        }
        r_now *= args.factor;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    ctx.shared.stopping.store(true, Relaxed);
    params["sweep"] = json!(true);
    params["start_rate"] = json!(rate);
    params["step_duration_s"] = json!(duration);
    params["factor"] = json!(args.factor);
    params["p99_limit_ms"] = json!(args.p99_limit_ms);
    params["steps"] = Value::Array(steps.iter().map(|s| s.json.clone()).collect());
    params["max_rate_ok"] = json!(best.map(|i| steps[i].rate));
    params["max_rate_ok_messages_per_s"] =
        json!(best.map(|i| steps[i].json["messages_per_s"].clone()));
    params["max_rate_ok_deliveries_per_s"] =
        json!(best.map(|i| steps[i].json["deliveries_per_s"].clone()));
    params["stop_reason"] = json!(stop_reason);
    table.push_str(&format!(
        "hubbub bench fanout --sweep{}: {} clients, {} senders, {duration} s per step, p99 limit {} ms\n",
        if args.lean { " --lean" } else { "" },
        args.clients,
        args.senders,
        args.p99_limit_ms
    ));
    table.push_str(&step_table(&steps));
    for s in &steps {
        table.push_str(&s.notes());
    }
    table.push_str(&match best {
        Some(i) => format!(
            "highest rate that held p99 < {} ms with nothing lost: {} msg/s ({} deliveries/s)\n",
            args.p99_limit_ms,
            r1(steps[i].rate),
            steps[i].json["deliveries_per_s"]
        ),
        None => format!(
            "no rate held p99 < {} ms with nothing lost\n",
            args.p99_limit_ms
        ),
    });
    table.push_str(&format!("stopped: {stop_reason}"));
    out.finish(&params, &table);
    Ok(())
}

/// Runs step number `step`, repeating it while other processes disturbed it (see
/// --max-foreign-cpu). `id` numbers every attempt (message bodies carry it).
async fn measure(
    ctx: &Ctx,
    args: &FanoutArgs,
    step: u32,
    id: &mut u32,
    rate: f64,
    duration: f64,
    out: Output,
) -> StepResult {
    let mut discarded = Vec::new();
    loop {
        *id += 1;
        let mut r = run_step(ctx, *id, rate, duration, args.drain, out).await;
        r.json["step"] = json!(step);
        // Closed connections cannot be had back: such a step stands, noisy or not.
        let intact = r.disconnects == 0 && ctx.shared.open.load(Relaxed) == ctx.clients;
        let noisy = match (args.max_foreign_cpu, r.foreign_cpu()) {
            (Some(max), Some(f)) => f > max && intact,
            _ => false,
        };
        if noisy && discarded.len() < args.noisy_retries {
            out.note(&format!(
                "step {step}: other processes used {:.0}% of a core; repeating it",
                r.foreign_cpu().unwrap_or_default()
            ));
            discarded.push(r.json);
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        r.json["attempts"] = json!(discarded.len() + 1);
        r.json["discarded_noisy_attempts"] = Value::Array(discarded);
        return r;
    }
}

fn merge(into: &mut Value, from: &Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), from.as_object()) {
        for (k, v) in b {
            a.insert(k.clone(), v.clone());
        }
    }
}

/// Creates the room and the clients, opens every connection and starts their tasks.
async fn setup(args: &FanoutArgs, target: &Target, out: Output) -> anyhow::Result<Ctx> {
    let recv_target = match &args.receivers_url {
        Some(u) if !args.lean => Some(Target::parse(u).await?),
        _ => None,
    };
    let run: Arc<str> = Arc::from(super::run_id());
    let shared = Arc::new(Shared {
        t0: Instant::now(),
        step: AtomicU32::new(0),
        sent: AtomicU64::new(0),
        acked: AtomicU64::new(0),
        send_errors: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        frames: AtomicU64::new(0),
        open: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
        disconnects: Mutex::new(Vec::new()),
        error_samples: Mutex::new(Vec::new()),
    });
    let conc = args.setup_concurrency.max(1);

    // Sessions: C guests in a fresh room (or, for the lean server, made-up tokens).
    let (room, tokens): (String, Vec<String>) = if args.lean {
        let tokens = (0..args.clients)
            .map(|i| format!("lean-{run}-{i}"))
            .collect();
        (format!("lean-{run}"), tokens)
    } else {
        let http = Http::new(target);
        let account = http
            .register(
                &format!("bench-{run}"),
                &format!("pw-{run}-{}", super::run_id()),
            )
            .await?;
        let room = http.create_room(&account, &format!("bench-{run}")).await?;
        let done = Arc::new(AtomicUsize::new(0));
        let total = args.clients;
        let d = done.clone();
        let _p = out.progress(move || format!("setup: guests {}/{total}", d.load(Relaxed)));
        let results: Vec<anyhow::Result<(usize, String)>> =
            futures_util::stream::iter(0..args.clients)
                .map(|i| {
                    let (http, room, run, done) =
                        (http.clone(), room.clone(), run.clone(), done.clone());
                    async move {
                        let (token, _) = http.guest(&format!("g{run}-{i}")).await?;
                        http.join(&token, &room).await?;
                        done.fetch_add(1, Relaxed);
                        Ok((i, token))
                    }
                })
                .buffer_unordered(conc)
                .collect()
                .await;
        let mut tokens = vec![String::new(); args.clients];
        for r in results {
            let (i, t) = r.context("creating guests")?;
            tokens[i] = t;
        }
        (room, tokens)
    };
    let room: Arc<str> = Arc::from(room);

    let recvs: Vec<_> = (0..args.clients)
        .map(|_| Arc::new(Mutex::new(Recv::new(args.senders))))
        .collect();
    let sents: Vec<_> = (0..args.senders)
        .map(|_| Arc::new(Mutex::new(Sent::new())))
        .collect();
    let opened = {
        let total = args.clients;
        let s = shared.clone();
        let _p = out.progress(move || format!("setup: connected {}/{total}", s.open.load(Relaxed)));
        let results: Vec<anyhow::Result<(usize, Option<mpsc::Sender<Plan>>)>> =
            futures_util::stream::iter(0..args.clients)
                .map(|i| {
                    // Senders are clients 0..S; the rest may sit on another node.
                    let target = match &recv_target {
                        Some(t) if i >= args.senders => t,
                        _ => target,
                    };
                    let url = target.ws_url(&tokens[i]);
                    let recv = recvs[i].clone();
                    let sent = sents.get(i).cloned();
                    let (shared, room, run) = (shared.clone(), room.clone(), run.clone());
                    let (lean, body_bytes) = (args.lean, args.body_bytes);
                    async move {
                        let ws = tokio::time::timeout(SETUP_TIMEOUT, async {
                            let mut ws =
                                net::connect(target, &url, None, net::ws_config(READ_BUFFER))
                                    .await?;
                            net::read_ready(&mut ws).await?;
                            if lean {
                                let join =
                                    format!(r#"{{"type":"join_room","req":1,"room_id":"{room}"}}"#);
                                ws.send(WsMessage::Text(join.into())).await?;
                                if let Err(e) = net::read_reply(&mut ws, 1).await? {
                                    bail!("join_room refused: {e}");
                                }
                            }
                            anyhow::Ok(ws)
                        })
                        .await
                        .context("timed out")?
                        .with_context(|| format!("connection {i}"))?;
                        shared.open.fetch_add(1, Relaxed);
                        let plans = match sent {
                            Some(sent) => {
                                let (sink, stream) = ws.split();
                                let (tx, rx) = mpsc::channel(1);
                                tokio::spawn(read_loop(
                                    stream,
                                    shared.clone(),
                                    recv,
                                    Some(sent.clone()),
                                ));
                                let who = Sender {
                                    idx: i,
                                    room,
                                    run,
                                    body_bytes,
                                };
                                tokio::spawn(write_loop(sink, rx, shared, sent, who));
                                Some(tx)
                            }
                            None => {
                                // Reading also answers the server's pings.
                                tokio::spawn(read_loop(ws, shared, recv, None));
                                None
                            }
                        };
                        Ok((i, plans))
                    }
                })
                .buffer_unordered(conc)
                .collect()
                .await;
        results
    };
    let mut plans: Vec<Option<mpsc::Sender<Plan>>> = (0..args.senders).map(|_| None).collect();
    let mut failed = Vec::new();
    for r in opened {
        match r {
            Ok((i, Some(tx))) => plans[i] = Some(tx),
            Ok(_) => {}
            Err(e) => failed.push(format!("{e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} connections failed; first: {}",
            failed.len(),
            args.clients,
            failed[0]
        );
    }

    // Let the connect-time traffic (presence, member events) settle.
    let settle_started = Instant::now();
    let mut last = shared.frames.load(Relaxed);
    let mut quiet_since = Instant::now();
    while settle_started.elapsed() < Duration::from_secs(20)
        && quiet_since.elapsed() < Duration::from_millis(1000)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = shared.frames.load(Relaxed);
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    Ok(Ctx {
        shared,
        recvs,
        sents,
        plans: plans
            .into_iter()
            .map(|p| p.expect("every sender connected"))
            .collect(),
        clients: args.clients,
        senders: args.senders,
        server_pid: args.server_pid,
    })
}

struct StepResult {
    rate: f64,
    p99_ms: f64,
    lost: u64,
    dup: u64,
    errors: u64,
    disconnects: usize,
    json: Value,
    disconnect_reasons: Vec<String>,
    error_samples: Vec<String>,
    gen_cpu: Option<f64>,
}

impl StepResult {
    /// CPU used by other processes during the step, in percent of one core (needs the
    /// server's pid).
    fn foreign_cpu(&self) -> Option<f64> {
        let j = &self.json;
        Some(j["machine_cpu_pct"].as_f64()? - j["server_cpu_pct"].as_f64()? - self.gen_cpu?)
    }

    /// Why this step did not hold (None: it held).
    fn failure(&self, p99_limit_ms: f64) -> Option<String> {
        let mut why = Vec::new();
        if self.p99_ms >= p99_limit_ms {
            why.push(format!("p99 {:.1} ms >= {p99_limit_ms} ms", self.p99_ms));
        }
        if self.lost > 0 {
            why.push(format!("{} deliveries lost", self.lost));
        }
        if self.dup > 0 {
            why.push(format!("{} deliveries duplicated", self.dup));
        }
        if self.errors > 0 {
            why.push(format!("{} sends refused", self.errors));
        }
        if self.disconnects > 0 {
            why.push(format!("{} connections closed", self.disconnects));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    fn notes(&self) -> String {
        let mut s = String::new();
        let j = &self.json;
        let step = &j["step"];
        if let Some(d) = j["discarded_noisy_attempts"].as_array()
            && !d.is_empty()
        {
            let f: Vec<String> = d
                .iter()
                .map(|a| format!("{}%", a["foreign_cpu_pct"]))
                .collect();
            s.push_str(&format!(
                "  step {step}: repeated; discarded noisy attempts (other processes' CPU: {})\n",
                f.join(", ")
            ));
        }
        if !self.disconnect_reasons.is_empty() {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for r in &self.disconnect_reasons {
                *counts.entry(r.as_str()).or_default() += 1;
            }
            s.push_str(&format!("  step {step}: connections closed: {counts:?}\n"));
        }
        if let Some(open) = j["open_connections"].as_u64()
            && let Some(clients) = j["clients_at_start"].as_u64()
            && open < clients
        {
            s.push_str(&format!(
                "  step {step}: {open} of {clients} connections open at the end\n"
            ));
        }
        for e in &self.error_samples {
            s.push_str(&format!("  step {step}: error: {e}\n"));
        }
        if let (Some(all), Some(gen_cpu)) = (j["machine_cpu_pct"].as_f64(), self.gen_cpu) {
            let others = all - gen_cpu - j["server_cpu_pct"].as_f64().unwrap_or(0.0);
            if others > 20.0 {
                s.push_str(&format!(
                    "  step {step}: other processes used about {others:.0}% of a core meanwhile{}\n",
                    if j["server_cpu_pct"].is_null() { " (server included: no --server-pid)" } else { "" }
                ));
            }
        }
        if self.gen_cpu.is_some_and(|c| c > 90.0) {
            s.push_str(&format!(
                "  step {step}: the generator used {:.0}% of a core: figures may be generator-bound\n",
                self.gen_cpu.unwrap_or_default()
            ));
        }
        s
    }
}

fn step_table(steps: &[StepResult]) -> String {
    let mut t = format!(
        "{:>5} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>5} {:>7} {:>7} {:>7}\n",
        "step",
        "offered",
        "acked/s",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "lost",
        "dup",
        "srv cpu",
        "gen cpu",
        "all cpu"
    );
    for s in steps {
        let j = &s.json;
        let l = &j["latency_ms"];
        let f = |v: &Value| v.as_f64().map(|x| format!("{x:.2}")).unwrap_or("-".into());
        let pct = |v: &Value| v.as_f64().map(|x| format!("{x:.0}%")).unwrap_or("-".into());
        t.push_str(&format!(
            "{:>5} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>5} {:>7} {:>7} {:>7}\n",
            j["step"],
            human(s.rate),
            human(j["messages_per_s"].as_f64().unwrap_or(0.0)),
            human(j["deliveries_per_s"].as_f64().unwrap_or(0.0)),
            f(&l["p50"]),
            f(&l["p99"]),
            f(&l["p999"]),
            f(&l["max"]),
            s.lost,
            s.dup,
            pct(&j["server_cpu_pct"]),
            pct(&j["generator_cpu_pct"]),
            pct(&j["machine_cpu_pct"]),
        ));
    }
    t
}

async fn run_step(
    ctx: &Ctx,
    step: u32,
    rate: f64,
    duration: f64,
    drain: f64,
    out: Output,
) -> StepResult {
    let sh = &ctx.shared;
    for r in &ctx.recvs {
        r.lock().reset(step);
    }
    for s in &ctx.sents {
        s.lock().reset(step);
    }
    for c in [&sh.sent, &sh.acked, &sh.send_errors, &sh.delivered] {
        c.store(0, Relaxed);
    }
    sh.step.store(step, Relaxed);
    let disconnects_before = sh.disconnects.lock().len();
    let errors_before = sh.error_samples.lock().len();

    let server_cpu = ctx.server_pid.map(|p| CpuMeter::start(p.to_string()));
    let gen_cpu = CpuMeter::start("self");
    let machine = stats::MachineMeter::start();
    let start = Instant::now() + Duration::from_millis(20);
    let end = start + Duration::from_secs_f64(duration);
    let interval = ctx.senders as f64 / rate;
    let mut dones = Vec::new();
    for (i, tx) in ctx.plans.iter().enumerate() {
        let (done, rx) = oneshot::channel();
        let plan = Plan {
            step,
            start,
            interval,
            offset: interval * i as f64 / ctx.senders as f64,
            end,
            done,
        };
        if tx.send(plan).await.is_ok() {
            dones.push(rx);
        }
    }
    let progress = {
        let s = sh.clone();
        let clients = ctx.clients;
        out.progress(move || {
            let t = start.elapsed().as_secs_f64();
            let d = s.delivered.load(Relaxed) as f64;
            format!(
                "fanout step {step} @ {} msg/s  t={:.0}s  sent {} acked {} errors {}  deliveries {} ({}/s)  open {}/{clients}",
                human(rate),
                t,
                s.sent.load(Relaxed),
                s.acked.load(Relaxed),
                s.send_errors.load(Relaxed),
                d,
                human(d / t.max(0.001)),
                s.open.load(Relaxed),
            )
        })
    };
    for d in dones {
        let _ = d.await;
    }
    // Drain: wait for every reply and every delivery of what was acknowledged.
    let send_end = Instant::now();
    let drain_limit = Duration::from_secs_f64(drain);
    let mut complete = false;
    while send_end.elapsed() < drain_limit {
        let (sent, acked, errs) = (
            sh.sent.load(Relaxed),
            sh.acked.load(Relaxed),
            sh.send_errors.load(Relaxed),
        );
        if acked + errs >= sent && sh.delivered.load(Relaxed) >= acked * ctx.clients as u64 {
            complete = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain_s = send_end.elapsed().as_secs_f64();
    let server_cpu_pct = server_cpu.and_then(|c| c.percent());
    let gen_cpu_pct = gen_cpu.percent();
    let machine_pct = machine.busy_percent();
    drop(progress);

    // Collect.
    let start_us = start.duration_since(sh.t0).as_micros() as u64;
    let mut lat = stats::new_hist();
    let mut ack = stats::new_hist();
    let mut lag = stats::new_hist();
    let (mut acked, mut errors, mut last_ack) = (0u64, 0u64, start_us);
    let sents: Vec<_> = ctx.sents.iter().map(|s| s.lock()).collect();
    for s in &sents {
        acked += s.n_acked;
        errors += s.n_errors;
        last_ack = last_ack.max(s.last_ack_at);
        let _ = ack.add(&s.ack_hist);
        let _ = lag.add(&s.lag_hist);
    }
    let sent_total = sh.sent.load(Relaxed);
    let (mut received, mut dup, mut stale, mut reordered, mut pos_regress, mut last_delivery) =
        (0u64, 0u64, 0u64, 0u64, 0u64, start_us);
    let mut unique_all = 0u64;
    for r in &ctx.recvs {
        let r = r.lock();
        let _ = lat.add(&r.hist);
        unique_all += r.unique;
        dup += r.dup;
        stale += r.stale;
        reordered += r.reordered;
        pos_regress += r.pos_regress;
        last_delivery = last_delivery.max(r.last_at);
        for (i, s) in sents.iter().enumerate() {
            received += stats::and_count(&r.seen[i], &s.acked);
        }
    }
    drop(sents);
    let expected = acked * ctx.clients as u64;
    let lost = expected.saturating_sub(received);
    let window = |last: u64| ((last.saturating_sub(start_us)) as f64 / 1e6).max(duration);
    let disconnect_reasons: Vec<String> = sh.disconnects.lock()[disconnects_before..].to_vec();
    let error_samples: Vec<String> = sh.error_samples.lock()[errors_before..].to_vec();
    let json = json!({
        "step": step,
        "offered_rate": r3(rate),
        "duration_s": duration,
        "sent": sent_total,
        "acked": acked,
        "send_errors": errors,
        "unanswered": sent_total.saturating_sub(acked + errors),
        "messages_per_s": r1(acked as f64 / window(last_ack)),
        "deliveries": received,
        "deliveries_per_s": r1(received as f64 / window(last_delivery)),
        "expected_deliveries": expected,
        "lost": lost,
        "duplicated": dup,
        "delivered_unacked": unique_all.saturating_sub(received),
        "late_from_earlier_step": stale,
        "out_of_order": reordered,
        "pos_regressions": pos_regress,
        "latency_ms": stats::summary(&lat),
        "ack_latency_ms": stats::summary(&ack),
        "send_lag_ms": stats::summary(&lag),
        "drain_s": r3(drain_s),
        "complete": complete,
        "disconnects": disconnect_reasons.len(),
        "open_connections": sh.open.load(Relaxed),
        "clients_at_start": ctx.clients,
        "server_cpu_pct": server_cpu_pct,
        "generator_cpu_pct": gen_cpu_pct,
        "machine_cpu_pct": machine_pct,
        "foreign_cpu_pct": match (machine_pct, server_cpu_pct, gen_cpu_pct) {
            (Some(m), Some(s), Some(g)) => Some(r1(m - s - g)),
            _ => None,
        },
        "loadavg_1m": stats::loadavg(),
        "error_samples": error_samples,
    });
    StepResult {
        rate,
        p99_ms: stats::p99_ms(&lat),
        lost,
        dup,
        errors,
        disconnects: disconnect_reasons.len(),
        json,
        disconnect_reasons,
        error_samples,
        gen_cpu: gen_cpu_pct,
    }
}
