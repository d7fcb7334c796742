//! `hubbub bench`: the load generator (SPEC §9), and the lean yardstick server.
//!
//! Modes:
//! - `fanout`: C clients in one fresh room, S of them sending at a total open-loop
//!   rate; delivery latency at every member, lost and duplicated deliveries.
//!   `--sweep` raises the rate until p99 reaches the limit or anything is lost.
//! - `posts`: K closed-loop senders (next message when the previous is acknowledged,
//!   i.e. durable), over the gateway or REST.
//! - `idle`: N idle authenticated connections; connect times and the server's memory
//!   per connection.
//! - `lean-server`: a minimal broadcast server speaking the same frames for the
//!   fanout path (no auth, no persistence): the lean limit of this machine.
//!
//! Every mode prints a live progress line on stderr, then ONE JSON line on stdout
//! (the parameters, the mode and every figure) and a readable table on stderr.
//!
//! The generator drives the server only through its public interface (HTTP, the
//! gateway); rate limits are lifted by starting the server with `--no-rate-limit`.

pub mod fanout;
pub mod idle;
pub mod lean;
mod net;
pub mod posts;
mod stats;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Print only the JSON line on stdout (no table on stderr).
    #[arg(long, global = true)]
    pub json_only: bool,

    /// No live progress line on stderr.
    #[arg(long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Subcommand, Debug)]
pub enum Mode {
    /// C clients in one room, S senders at a total rate: delivery latency and losses.
    Fanout(fanout::FanoutArgs),
    /// K closed-loop senders: acknowledged (durable) messages per second.
    Posts(posts::PostsArgs),
    /// N idle connections: connect time and server memory per connection.
    Idle(idle::IdleArgs),
    /// The yardstick: a minimal in-memory broadcast server speaking the fanout frames.
    LeanServer(lean::LeanArgs),
}

/// Output options shared by every mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    pub json_only: bool,
    pub quiet: bool,
}

impl Output {
    /// Prints the JSON line on stdout, then the table on stderr.
    pub fn finish(&self, json: &Value, table: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{json}");
        let _ = out.flush();
        if !self.json_only {
            eprintln!("{table}");
        }
    }

    /// Starts a progress line, refreshed once a second from `line`.
    pub fn progress(&self, line: impl Fn() -> String + Send + Sync + 'static) -> Progress {
        Progress::start(self.quiet, Arc::new(line))
    }

    pub fn note(&self, text: &str) {
        if !self.quiet {
            clear_line();
            eprintln!("{text}");
        }
    }
}

fn clear_line() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

/// A live progress line on stderr, overwritten with `\r` once a second. Stops (and
/// leaves the last line in place) when dropped.
pub(crate) struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
    line: Arc<dyn Fn() -> String + Send + Sync>,
    quiet: bool,
}

impl Progress {
    fn start(quiet: bool, line: Arc<dyn Fn() -> String + Send + Sync>) -> Progress {
        let task = (!quiet).then(|| {
            let line = line.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    print_progress(&line());
                }
            })
        });
        Progress { task, line, quiet }
    }
}

fn print_progress(line: &str) {
    let mut err = std::io::stderr().lock();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[2K{line}");
    } else {
        let _ = write!(err, "\r{line}\n");
    }
    let _ = err.flush();
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            if !self.quiet {
                print_progress(&(self.line)());
                if std::io::stderr().is_terminal() {
                    eprintln!();
                }
            }
        }
    }
}

/// Runs one `hubbub bench` mode.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let out = Output {
        json_only: args.json_only,
        quiet: args.quiet,
    };
    match args.mode {
        Mode::Fanout(a) => fanout::run(a, out).await,
        Mode::Posts(a) => posts::run(a, out).await,
        Mode::Idle(a) => idle::run(a, out).await,
        Mode::LeanServer(a) => lean::run(a).await,
    }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the new soft
/// limit.
pub(crate) fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        lim.rlim_cur
    }
}

/// A short random identifier for this run (names of guests, rooms, client ids).
pub(crate) fn run_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| {
            let c = rng.gen_range(0..36u8);
            (if c < 10 { b'0' + c } else { b'a' + c - 10 }) as char
        })
        .collect()
}

/// Rounds to 3 decimals for the report.
pub(crate) fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Rounds to 1 decimal for the report.
pub(crate) fn r1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// `1234567` → `1.23M`, for progress lines and tables.
pub(crate) fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}
