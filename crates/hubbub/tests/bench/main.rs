//! Smoke tests of `hubbub bench`: the generator runs as a subprocess against the real
//! server binary (and against its own lean server) and its JSON line is checked for
//! correctness figures only: nothing lost, nothing duplicated. No timing assertions.

#[path = "../common/mod.rs"]
mod common;

use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use common::{Server, WAIT};

/// Runs `hubbub bench ARGS…` and returns its final JSON line.
async fn bench(args: &[&str]) -> Value {
    let out = tokio::time::timeout(
        WAIT * 3,
        Command::new(env!("CARGO_BIN_EXE_hubbub"))
            .arg("bench")
            .arg("--quiet")
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("bench did not finish in time")
    .expect("run hubbub bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}\n{stderr}",
        out.status
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .expect("a JSON line");
    assert_eq!(
        stdout.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "one line: {stdout}"
    );
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    eprintln!("{line}\n{stderr}");
    v
}

fn n(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

#[tokio::test]
async fn fanout_delivers_everything_once() {
    let server = Server::start_with(&["--no-rate-limit"]).await;
    let v = bench(&[
        "fanout",
        "--url",
        &server.base,
        "--clients",
        "20",
        "--senders",
        "4",
        "--rate",
        "40",
        "--duration",
        "2",
    ])
    .await;
    assert_eq!(v["mode"], "fanout");
    assert_eq!(n(&v, "clients"), 20);
    assert!(n(&v, "acked") > 0, "{v}");
    assert_eq!(n(&v, "lost"), 0, "{v}");
    assert_eq!(n(&v, "duplicated"), 0, "{v}");
    assert_eq!(n(&v, "send_errors"), 0, "{v}");
    assert_eq!(n(&v, "deliveries"), n(&v, "acked") * 20, "{v}");
    assert_eq!(n(&v, "pos_regressions"), 0, "{v}");
    assert!(v["latency_ms"]["p99"].is_number(), "{v}");
}

#[tokio::test]
async fn posts_are_acknowledged_over_gateway_and_rest() {
    let server = Server::start_with(&["--no-rate-limit"]).await;
    for via in ["gateway", "rest"] {
        let v = bench(&[
            "posts",
            "--url",
            &server.base,
            "--senders",
            "4",
            "--duration",
            "1",
            "--via",
            via,
        ])
        .await;
        assert_eq!(v["mode"], "posts");
        assert_eq!(v["via"], via);
        assert!(n(&v, "acked") > 0, "{v}");
        assert_eq!(n(&v, "errors"), 0, "{v}");
    }
}

#[tokio::test]
async fn idle_connections_are_held() {
    let server = Server::start_with(&["--no-rate-limit"]).await;
    let pid = server.pid().to_string();
    let v = bench(&[
        "idle",
        "--url",
        &server.base,
        "--connections",
        "50",
        "--per-session",
        "10",
        "--hold",
        "1",
        "--server-pid",
        &pid,
    ])
    .await;
    assert_eq!(v["mode"], "idle");
    assert_eq!(n(&v, "connected"), 50, "{v}");
    assert_eq!(n(&v, "failed"), 0, "{v}");
    assert_eq!(n(&v, "closed_during_hold"), 0, "{v}");
    assert!(v["server_rss_after_bytes"].is_number(), "{v}");
}

/// The lean server started as a subprocess on a free port.
struct Lean {
    base: String,
    _child: tokio::process::Child,
}

async fn lean_server() -> Lean {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args(["bench", "lean-server", "--bind", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn lean server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(addr) = line.strip_prefix("lean-server listening on ") {
                return addr.trim().to_string();
            }
        }
        panic!("lean server exited before listening");
    })
    .await
    .expect("lean server did not start in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Lean {
        base: format!("http://{addr}"),
        _child: child,
    }
}

#[tokio::test]
async fn lean_server_fanout_delivers_everything_once() {
    let lean = lean_server().await;
    let v = bench(&[
        "fanout",
        "--lean",
        "--url",
        &lean.base,
        "--clients",
        "20",
        "--senders",
        "4",
        "--rate",
        "40",
        "--duration",
        "2",
    ])
    .await;
    assert_eq!(v["lean"], true);
    assert!(n(&v, "acked") > 0, "{v}");
    assert_eq!(n(&v, "lost"), 0, "{v}");
    assert_eq!(n(&v, "duplicated"), 0, "{v}");
    assert_eq!(n(&v, "pos_regressions"), 0, "{v}");
}

#[tokio::test]
async fn sweep_reports_steps() {
    let lean = lean_server().await;
    let v = bench(&[
        "fanout",
        "--lean",
        "--sweep",
        "--url",
        &lean.base,
        "--clients",
        "10",
        "--senders",
        "2",
        "--rate",
        "20",
        "--duration",
        "0.5",
        "--max-steps",
        "2",
    ])
    .await;
    let steps = v["steps"].as_array().expect("steps");
    assert!(!steps.is_empty(), "{v}");
    assert!(steps.iter().all(|s| s["lost"] == 0), "{v}");
}
