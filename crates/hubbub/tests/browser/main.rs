//! Browser end-to-end test: the real server binary, the real web client, two real
//! headless Chromium instances (isolated profiles, so two separate people) driven
//! over WebDriver through the client's accessible names and roles.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (or `HUBBUB_CHROMIUM` /
//! `HUBBUB_CHROMEDRIVER`). Without them the test prints one line and passes,
//! unless `HUBBUB_E2E=require`, in which case it fails. Set
//! `HUBBUB_SCREENSHOTS=1` to refresh the README screenshots in docs/screenshots/.

#[path = "../common/mod.rs"]
mod common;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Server, WAIT};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Reconnecting after the server comes back includes the client's backoff (at
/// most 10 s between attempts), so this wait is longer than the usual one.
const RECONNECT_WAIT: Duration = Duration::from_secs(45);
const POLL: Duration = Duration::from_millis(100);

const LOG: &str = r#"[role="log"][aria-label="Messages"]"#;
const COMPOSER: &str = r#"textarea[aria-label="Message"]"#;

struct Tools {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// The browser and its driver, or None (after saying why) when the test is skipped.
fn tools() -> Option<Tools> {
    let path = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| default.into())
    };
    let t = Tools {
        chromium: path("HUBBUB_CHROMIUM", "/usr/bin/chromium"),
        chromedriver: path("HUBBUB_CHROMEDRIVER", "/usr/bin/chromedriver"),
    };
    let missing: Vec<String> = [&t.chromium, &t.chromedriver]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some(t);
    }
    let why = format!("{} not found", missing.join(" and "));
    if std::env::var("HUBBUB_E2E").as_deref() == Ok("require") {
        panic!("HUBBUB_E2E=require, but {why}");
    }
    println!("browser tests skipped: {why}");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One headless Chromium with its own chromedriver and a fresh profile directory.
struct Browser {
    name: &'static str,
    client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(tools: &Tools, name: &'static str) -> Browser {
        let port = free_port();
        let driver = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chromedriver");
        let deadline = Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port}"
            );
            tokio::time::sleep(POLL).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let client = ClientBuilder::native()
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("start a Chromium session");
        Browser {
            name,
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// Waits for an element matching `css` to exist.
    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: no element {css}: {e}", self.name))
    }

    async fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .expect("execute script")
    }

    /// Polls a script until it returns something truthy; fails after `timeout`.
    async fn wait_js(
        &self,
        what: &str,
        script: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script, args.clone()).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let log = self.eval(&format!("return document.querySelector('{LOG}')?.innerText ?? document.body.innerText"), vec![]).await;
                panic!(
                    "{}: timed out waiting for {what}; last value {v}; page text:\n{}",
                    self.name,
                    log.as_str().unwrap_or("")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// How many messages in the log contain `text`.
    async fn count_messages(&self, text: &str) -> u64 {
        let v = self
            .eval(
                &format!("return [...document.querySelectorAll('{LOG} article')].filter(a => a.textContent.includes(arguments[0])).length"),
                vec![json!(text)],
            )
            .await;
        v.as_u64().unwrap_or(0)
    }

    async fn wait_message(&self, text: &str, timeout: Duration) {
        self.wait_js(
            &format!("message {text:?} in the log"),
            &format!("return [...document.querySelectorAll('{LOG} article')].some(a => a.textContent.includes(arguments[0]) && !a.classList.contains('pending'))"),
            vec![json!(text)],
            timeout,
        )
        .await;
    }

    /// Waits until some `role="status"` element says `text`.
    async fn wait_status(&self, text: &str, timeout: Duration) {
        self.wait_js(
            &format!("status {text:?}"),
            "return [...document.querySelectorAll('[role=status]')].some(s => s.textContent.includes(arguments[0]))",
            vec![json!(text)],
            timeout,
        )
        .await;
    }

    /// Joins through the join screen; `shot` saves a screenshot of the filled form.
    async fn join_as_guest(
        &self,
        base: &str,
        name: &str,
        avatar: Option<&Path>,
        shot: Option<&Path>,
    ) {
        self.goto(&format!("{base}/")).await;
        self.find(r#"input[aria-label="Name"]"#)
            .await
            .send_keys(name)
            .await
            .expect("type name");
        if let Some(path) = avatar {
            let input = self
                .find(r#"input[type="file"][aria-label="Avatar"]"#)
                .await;
            input
                .send_keys(&path.display().to_string())
                .await
                .expect("choose avatar");
            // The preview is local (blob:) until the server has the image.
            self.wait_js("avatar preview", "return document.querySelector('img[alt=\"Avatar preview\"]')?.src.startsWith('blob:')", vec![], WAIT).await;
        }
        self.screenshot(shot, "join.png").await;
        self.find(r#"button[aria-label="Join"]"#)
            .await
            .click()
            .await
            .expect("click Join");
        self.find(COMPOSER).await;
        self.wait_status("Connected", WAIT).await;
    }

    async fn type_message(&self, text: &str) {
        self.find(COMPOSER)
            .await
            .send_keys(text)
            .await
            .expect("type message");
    }

    async fn send_with_enter(&self, text: &str) {
        let input = self.find(COMPOSER).await;
        input.send_keys(text).await.expect("type message");
        input.send_keys(&Key::Enter).await.expect("press Enter");
    }

    async fn screenshot(&self, dir: Option<&Path>, file: &str) {
        if let Some(dir) = dir {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(file), png).expect("write screenshot");
        }
    }
}

/// Where to save README screenshots (only when HUBBUB_SCREENSHOTS is set).
fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("HUBBUB_SCREENSHOTS")?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    Some(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_guests_chat_in_real_time_and_survive_a_server_crash() {
    let Some(tools) = tools() else { return };
    let mut server = Server::start_with(&["--no-rate-limit"]).await;
    let (alice, bob) = tokio::join!(
        Browser::launch(&tools, "alice"),
        Browser::launch(&tools, "bob")
    );
    let outcome = AssertUnwindSafe(scenario(&mut server, &alice, &bob))
        .catch_unwind()
        .await;
    alice.close().await;
    bob.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(server: &mut Server, alice: &Browser, bob: &Browser) {
    let shots = screenshot_dir();
    let base = server.base.clone();
    let avatar_dir = tempfile::tempdir().unwrap();
    let avatar = avatar_dir.path().join("alice.png");
    std::fs::write(&avatar, common::png(96, 64)).unwrap();

    // 1. Two isolated browsers join as guests; alice uploads an avatar, bob keeps the default.
    alice
        .join_as_guest(&base, "alice", Some(&avatar), shots.as_deref())
        .await;
    bob.join_as_guest(&base, "bob", None, None).await;

    // 2. Each sees the other in the member list, with the avatar served by the server.
    let members = r#"aside[aria-label="Members"]"#;
    alice.find(&format!(r#"{members} img[alt="bob"]"#)).await;
    let img = bob.find(&format!(r#"{members} img[alt="alice"]"#)).await;
    let src = img.attr("src").await.unwrap().expect("avatar src");
    assert!(
        src.starts_with("/api/v1/avatars/"),
        "alice's avatar is not the server URL: {src}"
    );
    bob.wait_js(
        "alice's avatar to load",
        &format!(r#"const i = document.querySelector('{members} img[alt="alice"]'); return i && i.complete && i.naturalWidth > 0"#),
        vec![],
        WAIT,
    )
    .await;
    // And it is the uploaded picture (the test PNG is one solid colour), not the default.
    let bytes = reqwest::get(server.url(&src))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let pic = image::load_from_memory(&bytes)
        .expect("avatar decodes")
        .to_rgb8();
    let px = pic.get_pixel(pic.width() / 2, pic.height() / 2).0;
    let close = |a: u8, b: u8| (a as i32 - b as i32).abs() <= 12;
    assert!(
        close(px[0], 200) && close(px[1], 60) && close(px[2], 90),
        "alice's avatar is not her upload: {px:?}"
    );
    let bob_src = alice
        .find(&format!(r#"{members} img[alt="bob"]"#))
        .await
        .attr("src")
        .await
        .unwrap()
        .unwrap();
    assert!(
        bob_src.starts_with("/api/v1/avatars/"),
        "bob's default avatar: {bob_src}"
    );

    // 3. Messages go both ways in real time (Enter in one, the Send button in the other).
    alice
        .send_with_enter("Hi bob! The release notes draft is up, have a look when you can.")
        .await;
    bob.wait_message("The release notes draft is up", WAIT)
        .await;
    bob.type_message("Thanks alice, reading it now.").await;
    bob.find(r#"button[aria-label="Send"]"#)
        .await
        .click()
        .await
        .expect("click Send");
    alice.wait_message("reading it now", WAIT).await;
    alice
        .send_with_enter(
            "The `--no-rate-limit` flag is for benchmarks only, so it stays out of the notes.",
        )
        .await;
    bob.wait_message("is for benchmarks only", WAIT).await;

    // 4. The typing indicator shows on the other side while one types.
    bob.type_message("Looks good to me").await;
    alice.wait_status("bob is typing", WAIT).await;
    alice.screenshot(shots.as_deref(), "chat.png").await;
    if shots.is_some() {
        alice
            .find(r#"button[aria-label="Toggle theme"]"#)
            .await
            .click()
            .await
            .unwrap();
        alice
            .wait_js(
                "dark theme",
                "return document.documentElement.dataset.theme === 'dark'",
                vec![],
                WAIT,
            )
            .await;
        alice.screenshot(shots.as_deref(), "chat-dark.png").await;
        alice
            .find(r#"button[aria-label="Toggle theme"]"#)
            .await
            .click()
            .await
            .unwrap();
    }
    bob.find(COMPOSER)
        .await
        .send_keys(&Key::Enter)
        .await
        .unwrap();
    alice.wait_message("Looks good to me", WAIT).await;
    alice
        .wait_js(
            "the typing indicator to clear",
            "return ![...document.querySelectorAll('[role=status]')].some(s => s.textContent.includes('typing'))",
            vec![],
            WAIT,
        )
        .await;

    // 5. A reload keeps the history.
    alice.client.refresh().await.expect("reload");
    alice.find(COMPOSER).await;
    alice
        .wait_message("The release notes draft is up", WAIT)
        .await;
    alice.wait_message("reading it now", WAIT).await;
    alice
        .send_with_enter(
            "The `--no-rate-limit` flag is for benchmarks only, so it stays out of the notes.",
        )
        .await;
    bob.wait_message("is for benchmarks only", WAIT).await;
    alice.wait_message("Looks good to me", WAIT).await;
    alice.wait_status("Connected", WAIT).await;

    // 6. The server dies (SIGKILL); a message typed meanwhile is queued, not lost.
    server.kill9().await;
    alice.wait_status("Reconnecting", WAIT).await;
    bob.wait_status("Reconnecting", WAIT).await;
    let offline = "Sent while the server was down";
    alice.send_with_enter(offline).await;
    alice
        .wait_js(
            "the offline message to be shown as pending",
            &format!("return [...document.querySelectorAll('{LOG} article.pending')].some(a => a.textContent.includes(arguments[0]))"),
            vec![json!(offline)],
            WAIT,
        )
        .await;
    assert_eq!(alice.count_messages(offline).await, 1);

    // Same port, same data: both browsers reconnect by themselves and the queued
    // message arrives exactly once.
    server.restart().await;
    alice.wait_status("Connected", RECONNECT_WAIT).await;
    bob.wait_status("Connected", RECONNECT_WAIT).await;
    bob.wait_message(offline, RECONNECT_WAIT).await;
    alice.wait_message(offline, WAIT).await;
    // A message after it is a barrier: once bob sees it, anything duplicated
    // before it would be visible too.
    bob.send_with_enter("Welcome back").await;
    alice.wait_message("Welcome back", WAIT).await;
    bob.wait_message("Welcome back", WAIT).await;
    assert_eq!(
        bob.count_messages(offline).await,
        1,
        "bob sees the queued message exactly once"
    );
    assert_eq!(
        alice.count_messages(offline).await,
        1,
        "alice sees her queued message exactly once"
    );

    // The server stored it once, too.
    let carol = server.guest("carol").await;
    let general = carol.general().await;
    let history = carol
        .get(&format!("/api/v1/rooms/{general}/messages?limit=50"))
        .await;
    assert_eq!(history.status, 200, "{}", history.body);
    let stored = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == offline)
        .count();
    assert_eq!(stored, 1, "the queued message is stored exactly once");
}
