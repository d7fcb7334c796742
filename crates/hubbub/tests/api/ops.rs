//! SPEC §2/§9/§11: health, readiness, metrics, the served web client, shutdown, CLI.

use std::process::Stdio;

use crate::common::*;
use crate::support::*;

#[tokio::test]
async fn healthz_and_readyz_answer_200() {
    let server = fast().await;
    let anon = server.http();
    let r = anon.get("/healthz").await;
    assert_eq!(r.status, 200, "/healthz: {}", text(&r));
    let r = anon.get("/readyz").await;
    assert_eq!(r.status, 200, "/readyz: {}", text(&r));
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_hubbub_metrics() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let general = alice.general().await;
    let mut ws = alice.connect().await;
    ws.send_message(&general, "count me").await;
    let r = server.http().get("/metrics").await;
    assert_eq!(r.status, 200);
    let ct = r
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "metrics content-type {ct:?}");
    let body = String::from_utf8(r.bytes.clone()).expect("utf-8 metrics");
    assert!(
        body.contains("# TYPE hubbub_"),
        "no hubbub_ metric families:\n{body}"
    );
    let names: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && l.starts_with("hubbub_"))
        .collect();
    assert!(!names.is_empty(), "no hubbub_ samples:\n{body}");
    for l in &names {
        let value = l.rsplit(' ').next().unwrap();
        assert!(
            value.parse::<f64>().is_ok(),
            "sample line {l:?} has no numeric value"
        );
    }
}

#[tokio::test]
async fn the_web_client_is_served_with_a_content_security_policy() {
    let server = fast().await;
    let r = server.http().get("/").await;
    assert_eq!(r.status, 200);
    let ct = r
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("text/html"), "GET / content-type {ct:?}");
    let csp = r
        .headers
        .get("content-security-policy")
        .expect("GET / without a Content-Security-Policy header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src") || csp.contains("script-src"),
        "weak CSP: {csp}"
    );
    let html = String::from_utf8_lossy(&r.bytes).to_ascii_lowercase();
    assert!(
        html.contains("<html") || html.contains("<!doctype html"),
        "GET / is not an HTML page"
    );
    // No CDN: everything is local.
    for cdn in ["cdn.jsdelivr", "unpkg.com", "cdnjs.", "googleapis.com"] {
        assert!(!html.contains(cdn), "the page loads from a CDN ({cdn})");
    }
}

#[tokio::test]
async fn openapi_description_is_served() {
    let server = fast().await;
    let r = server.http().get("/api/v1/openapi.json").await;
    assert_eq!(r.status, 200, "openapi.json: {}", text(&r));
    assert!(r.body["openapi"].is_string(), "not an OpenAPI document");
    let paths = r.body["paths"].as_object().expect("paths");
    assert!(
        paths.keys().any(|k| k.contains("/rooms")),
        "OpenAPI paths lack the rooms endpoints: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn unknown_api_paths_are_json_not_found() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let r = alice.get("/api/v1/definitely-not-an-endpoint").await;
    err(&r, "not_found", "unknown API path");
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1001_and_exits_cleanly() {
    let mut server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let general = alice.general().await;
    let mut a = alice.connect().await;
    let mut b = bob.connect().await;
    let acked = a.send_message(&general, "before shutdown").await;
    let (status, ca, cb) = tokio::join!(server.terminate(), a.recv_close(), b.recv_close());
    assert!(status.success(), "hubbub exited with {status:?} on SIGTERM");
    assert_eq!(
        ca.map(|c| c.0),
        Some(1001),
        "close code for alice on shutdown"
    );
    assert_eq!(
        cb.map(|c| c.0),
        Some(1001),
        "close code for bob on shutdown"
    );
    // Data is intact after a graceful stop.
    server.restart().await;
    let msgs = all_messages(&alice, &general).await;
    assert_eq!(ids(&msgs), vec![s(&acked["id"])]);
}

#[tokio::test]
async fn help_documents_the_subcommands() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run hubbub --help");
    assert!(out.status.success(), "hubbub --help failed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for sub in ["serve", "admin", "export", "import", "bench"] {
        assert!(text.contains(sub), "--help does not mention {sub}:\n{text}");
    }
}

#[tokio::test]
async fn redis_with_sqlite_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--redis-url",
                "redis://127.0.0.1:1",
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("HUBBUB_DATABASE_URL")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("hubbub should refuse to start, not keep running")
    .expect("run hubbub");
    assert!(
        !out.status.success(),
        "hubbub started with --redis-url on SQLite"
    );
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        msg.to_lowercase().contains("postgres"),
        "the refusal should say multi-node needs PostgreSQL: {msg}"
    );
}

#[tokio::test]
async fn bad_command_line_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["serve", "--presence-grace-ms", "soon"],
        vec!["serve", "--registration", "sometimes"],
        vec!["serve", "--bind", "not-an-address"],
    ] {
        let out = tokio::time::timeout(
            WAIT,
            tokio::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
                .args(&args)
                .arg("--data-dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("hubbub {args:?} kept running"))
        .expect("run hubbub");
        assert!(!out.status.success(), "hubbub {args:?} was accepted");
        assert!(
            !out.stderr.is_empty(),
            "hubbub {args:?} failed without a message"
        );
    }
}
