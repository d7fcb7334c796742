//! Browser end-to-end tests: the real server binary, the real web client, two real
//! headless Chromium instances (isolated profiles, so two separate people) driven
//! over WebDriver through the client's accessible names and roles. Three scenarios:
//! chat and crash recovery; rich messaging (reactions, threads, mentions, uploads,
//! search, DMs, pins); hostile input rendered inert.
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

use common::{Api, Server, WAIT};
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

const LOG: &str = r#"[role="log"][aria-label="Conversation"]"#;
const COMPOSER: &str = r#"textarea[aria-label="Message"]"#;
const PASSWORD: &str = "correct horse battery";
/// JS: the article in the main log whose text includes arguments[0].
const ARTICLE: &str = r#"[...document.querySelectorAll('[role="log"][aria-label="Conversation"] article')].find(a => a.textContent.includes(arguments[0]))"#;

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

    /// Creates an account through the join screen ("Create account").
    async fn register(&self, base: &str, username: &str) {
        self.goto(&format!("{base}/")).await;
        // The account form replaces the guest form only when asked for.
        self.click(r#"button[data-ref="show-register"]"#).await;
        self.find(r#"input[aria-label="Username"]"#)
            .await
            .send_keys(username)
            .await
            .expect("type username");
        self.find(r#"input[aria-label="Password"]"#)
            .await
            .send_keys(PASSWORD)
            .await
            .expect("type password");
        self.click(r#"button[data-ref="account-submit"]"#).await;
        self.find(COMPOSER).await;
        self.wait_status("Connected", WAIT).await;
    }

    /// Clicks an element, looking it up again if it was re-rendered meanwhile.
    async fn click(&self, css: &str) {
        for attempt in 0.. {
            match self.find(css).await.click().await {
                Ok(_) => return,
                Err(_) if attempt < 20 => tokio::time::sleep(POLL).await,
                Err(e) => panic!("{}: click {css}: {e}", self.name),
            }
        }
    }

    /// Waits for an element matching `css` whose text includes `text`.
    async fn find_text(&self, css: &str, text: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            for e in self
                .client
                .find_all(Locator::Css(css))
                .await
                .unwrap_or_default()
            {
                if e.text().await.is_ok_and(|t| t.contains(text)) {
                    return e;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: no {css} with text {text:?}",
                self.name
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the element matching `css` whose text includes `text` (looked up again
    /// if it was re-rendered meanwhile).
    async fn click_text(&self, css: &str, text: &str) {
        for attempt in 0.. {
            match self.find_text(css, text).await.click().await {
                Ok(_) => return,
                Err(_) if attempt < 20 => tokio::time::sleep(POLL).await,
                Err(e) => panic!("{}: click {css} {text:?}: {e}", self.name),
            }
        }
    }

    /// A selector for the (delivered) message in the main log that contains `text`
    /// (its id, which survives re-rendering).
    async fn message(&self, text: &str) -> String {
        self.wait_message(text, WAIT).await;
        let id = self
            .eval(&format!("return {ARTICLE}.id"), vec![json!(text)])
            .await;
        format!("#{}", id.as_str().expect("article id"))
    }

    /// Presses a key in whatever has the focus.
    async fn press(&self, key: Key) {
        let e = self.client.active_element().await.expect("focused element");
        e.send_keys(&key).await.expect("press a key");
    }

    /// Waits for `script` (given `arg`) to be truthy.
    async fn until(&self, what: &str, script: &str, arg: &str) {
        self.wait_js(what, script, vec![json!(arg)], WAIT).await;
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

/// A REST session for an account (the browsers have their own, in cookies).
async fn login(server: &Server, username: &str) -> Api {
    let r = server
        .http()
        .post(
            "/api/v1/auth/login",
            json!({ "username": username, "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "login {username}: {}", r.body);
    server.api_with(r.body["token"].as_str().unwrap(), r.body["user"].clone())
}

/// Uploads a file as an attachment; returns its id.
async fn upload(api: &Api, name: &str, bytes: Vec<u8>, mime: &str) -> String {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = api
        .send(
            api.request(reqwest::Method::POST, "/api/v1/uploads")
                .multipart(form),
        )
        .await;
    assert_eq!(r.status, 200, "upload {name}: {}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn post(api: &Api, room: &str, body: Value) -> Value {
    let r = api
        .post(&format!("/api/v1/rooms/{room}/messages"), body)
        .await;
    assert_eq!(r.status, 200, "post: {}", r.body);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_messaging_between_two_browsers() {
    let Some(tools) = tools() else { return };
    let server = Server::start_with(&["--no-rate-limit"]).await;
    let (alice, bob) = tokio::join!(
        Browser::launch(&tools, "alice"),
        Browser::launch(&tools, "bob")
    );
    let outcome = AssertUnwindSafe(rich_scenario(&server, &alice, &bob))
        .catch_unwind()
        .await;
    alice.close().await;
    bob.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn rich_scenario(server: &Server, alice: &Browser, bob: &Browser) {
    let shots = screenshot_dir();
    let shots = shots.as_deref();
    let base = server.base.clone();

    // Two accounts made through the join screen; alice is first, so a server admin.
    alice.register(&base, "alice").await;
    bob.register(&base, "bob").await;
    let (a, b) = (login(server, "alice").await, login(server, "bob").await);
    let general = a.general().await;

    // Older history: a message to find later, then enough that it is not on screen.
    let needle = "The quarterly numbers are in the blue folder";
    let needle_id = post(&a, &general, json!({ "body": needle })).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 1..=240 {
        post(&a, &general, json!({ "body": format!("Build {i} passed") })).await;
    }
    for (who, body) in [
        (
            &b,
            "Morning! The **staging** deploy went through, release notes are in `docs/`.",
        ),
        (
            &a,
            "Great, thanks bob. I'll do a last pass on the onboarding copy.",
        ),
        (&b, "Sounds good. Ping me if anything looks off :)"),
    ] {
        post(who, &general, json!({ "body": body })).await;
    }
    bob.wait_message("Ping me if anything looks off", WAIT)
        .await;
    // A fresh page load holds only the newest page.
    bob.client.refresh().await.expect("reload");
    bob.find(COMPOSER).await;
    bob.wait_message("Ping me if anything looks off", WAIT)
        .await;
    assert_eq!(
        bob.count_messages(needle).await,
        0,
        "the needle is not loaded yet"
    );

    // 1. Reactions: bob reacts through the picker's search; alice sees the count,
    // adds hers by clicking the chip, and bob sees it go to 2.
    let ship = "Shipping the new onboarding flow today";
    alice.send_with_enter(ship).await;
    let m = bob.message(ship).await;
    bob.click(&format!(r#"{m} button[aria-label="React"]"#))
        .await;
    let search = bob
        .find(r#"[role="dialog"][aria-label="Emoji picker"] input[aria-label="Search emoji"]"#)
        .await;
    search.send_keys("rocket").await.unwrap();
    search.send_keys(&Key::Enter).await.unwrap();
    let m_a = alice.message(ship).await;
    let chip = |n: u32| format!(r#"{m_a} button[aria-label="🚀 {n}"]"#);
    alice.click(&chip(1)).await;
    alice
        .until(
            "alice's own reaction",
            &format!(
                r#"return document.querySelector('{}')?.getAttribute('aria-pressed') === 'true'"#,
                chip(2)
            ),
            "",
        )
        .await;
    bob.find(&format!(
        r#"{m} button[aria-label="🚀 2"][aria-pressed="true"]"#
    ))
    .await;
    // A quick reaction from the picker, and who reacted (a tooltip, fetched on hover).
    bob.click(&format!(r#"{m} button[aria-label="React"]"#))
        .await;
    bob.click(r#"button[aria-label="React with 🎉"]"#).await;
    alice
        .find(&format!(r#"{m_a} button[aria-label="🎉 1"]"#))
        .await;
    alice
        .eval(
            &format!("document.querySelector('{m_a} .reactions').dispatchEvent(new PointerEvent('pointerenter'))"),
            vec![],
        )
        .await;
    alice
        .until(
            "who reacted",
            &format!(r#"const t = document.querySelector('{}').title; return t.includes('You') && t.includes('bob')"#, chip(2)),
            "",
        )
        .await;
    // The picker is open for the screenshot.
    alice
        .click(&format!(r#"{m_a} button[aria-label="React"]"#))
        .await;
    alice
        .find(r#"[aria-label="Emoji picker"] button[aria-label="React with 👍"]"#)
        .await;
    alice.screenshot(shots, "reactions.png").await;
    alice.press(Key::Escape).await;
    alice
        .until(
            "the picker to close",
            r#"return !document.querySelector('[aria-label="Emoji picker"]')"#,
            "",
        )
        .await;

    // 2. `:shortcode:` completion inserts the emoji; `@` completes people.
    alice.type_message("Launch day :roc").await;
    alice
        .until(
            "the :roc suggestion",
            r#"return document.querySelector('[role="listbox"] [aria-selected="true"]')?.textContent.includes('🚀')"#,
            "",
        )
        .await;
    alice
        .find(COMPOSER)
        .await
        .send_keys(&Key::Tab)
        .await
        .unwrap();
    alice
        .until(
            "🚀 in the composer",
            &format!("return document.querySelector('{COMPOSER}').value === 'Launch day 🚀 '"),
            "",
        )
        .await;
    alice.send_with_enter("is here").await;
    bob.wait_message("Launch day 🚀 is here", WAIT).await;

    // 3. Threads: bob replies in a thread; alice opens it from "1 reply"; replies
    // stay out of the main list and arrive live in the panel.
    let thread = r#"aside[aria-label="Thread"]"#;
    bob.click(&format!(r#"{m} button[aria-label="Reply in thread"]"#))
        .await;
    let reply = bob
        .find(&format!(r#"{thread} textarea[aria-label="Thread reply"]"#))
        .await;
    reply.send_keys("I'll take the QA pass").await.unwrap();
    reply.send_keys(&Key::Enter).await.unwrap();
    alice.click(&format!("{m_a} button.thread-link")).await;
    alice
        .until(
            "the reply in alice's thread panel",
            &format!(
                r#"return document.querySelector('{thread}').textContent.includes(arguments[0])"#
            ),
            "I'll take the QA pass",
        )
        .await;
    assert_eq!(
        alice.count_messages("I'll take the QA pass").await,
        0,
        "thread replies stay in the thread"
    );
    let reply = alice
        .find(&format!(r#"{thread} textarea[aria-label="Thread reply"]"#))
        .await;
    reply
        .send_keys("Thanks! Ping me when it is green.")
        .await
        .unwrap();
    reply.send_keys(&Key::Enter).await.unwrap();
    bob.until(
        "alice's reply in bob's panel",
        &format!(r#"return document.querySelector('{thread}').textContent.includes(arguments[0])"#),
        "Ping me when it is green",
    )
    .await;
    alice.find(&format!(r#"{m_a} button.thread-link"#)).await;
    alice.until("2 replies", &format!(r#"return document.querySelector('{m_a} .thread-link')?.textContent === '2 replies'"#), "").await;
    alice.screenshot(shots, "thread.png").await;
    alice.click(r#"button[aria-label="Close thread"]"#).await;
    bob.click(r#"button[aria-label="Close thread"]"#).await;

    // 4. Pins: alice (an admin) pins; bob sees the marker and the pinned list.
    alice
        .click(&format!(r#"{m_a} button[aria-label="Pin"]"#))
        .await;
    bob.find(&format!("{m}.pinned .pin-tag")).await;
    bob.click(r#"button[aria-label="Pinned"]"#).await;
    bob.until("the pinned list", r#"return document.querySelector('[aria-label="Pinned messages"][role], ul[aria-label="Pinned messages"]')?.textContent.includes(arguments[0])"#, ship)
        .await;
    bob.press(Key::Escape).await;
    bob.until(
        "the dialog to close",
        "return !document.querySelector('dialog[open]')",
        "",
    )
    .await;

    // 5. Mentions: bob is in another room; alice mentions him (completed with `@`)
    // and his sidebar shows the mention badge on General.
    let design = a
        .create_room(json!({ "name": "Design", "topic": "Mockups and reviews" }))
        .await;
    let design = design["id"]
        .as_str()
        .or(design["room"]["id"].as_str())
        .unwrap()
        .to_string();
    let joined = b
        .post(&format!("/api/v1/rooms/{design}/join"), json!({}))
        .await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    let nav = r#"nav[aria-label="Rooms"] a"#;
    bob.click_text(nav, "Design").await;
    bob.until(
        "Design open",
        r#"return document.querySelector('h1.room-name').textContent.includes(arguments[0])"#,
        "Design",
    )
    .await;
    alice.type_message("Can you review the copy, @bo").await;
    alice.until("the @bob suggestion", r#"return document.querySelector('[role="listbox"] [aria-selected="true"]')?.textContent.includes('@bob')"#, "").await;
    alice
        .find(COMPOSER)
        .await
        .send_keys(&Key::Enter)
        .await
        .unwrap();
    alice
        .until(
            "@bob in the composer",
            &format!("return document.querySelector('{COMPOSER}').value.endsWith('@bob ')"),
            "",
        )
        .await;
    alice.send_with_enter("before lunch?").await;
    let general_link = r#"nav[aria-label="Rooms"] a[href$="GENERAL"]"#.replace("GENERAL", &general);
    bob.until("the mention badge", &format!(r#"return document.querySelector('{general_link} .badge-mention')?.textContent.startsWith('@1')"#), "").await;
    bob.screenshot(shots, "mentions.png").await;
    bob.click(&general_link).await;
    let mention = bob.message("Can you review the copy").await;
    bob.find(&format!("{mention}.mention .mention-me")).await;
    bob.until(
        "the badge to clear",
        &format!(r#"return !document.querySelector('{general_link} .badge')"#),
        "",
    )
    .await;

    // 6. Attachments: alice picks files; bob sees the thumbnail and opens the lightbox.
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("launch-diagram.png");
    std::fs::write(&png, common::png(640, 400)).unwrap();
    let pdf = dir.path().join("release-notes.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n% release notes\n").unwrap();
    let attach = alice
        .find(r#"input[type="file"][aria-label="Attach file"]"#)
        .await;
    attach.send_keys(&png.display().to_string()).await.unwrap();
    attach.send_keys(&pdf.display().to_string()).await.unwrap();
    let chips = |n: usize| {
        format!(
            r#"const c = [...document.querySelectorAll('ul[aria-label="Attachments"] li')]; return c.length === {n} && c.every(l => !l.querySelector('progress') && !l.classList.contains('failed'))"#
        )
    };
    alice.until("both uploads", &chips(2), "").await;
    // Pasting an image and dropping a file on the conversation add chips too; they can be removed.
    let file = |name: &str| {
        format!(
            "const d = new DataTransfer(); d.items.add(new File([new Uint8Array([137,80,78,71])], '{name}', {{type: 'image/png'}})); return d;"
        )
    };
    alice
        .eval(
            &format!("const d = (() => {{ {} }})(); document.querySelector('{COMPOSER}').dispatchEvent(new ClipboardEvent('paste', {{clipboardData: d, bubbles: true, cancelable: true}}))", file("pasted.png")),
            vec![],
        )
        .await;
    alice
        .eval(
            &format!("const d = (() => {{ {} }})(); const c = document.querySelector('main.conversation'); for (const t of ['dragenter', 'dragover', 'drop']) c.dispatchEvent(new DragEvent(t, {{dataTransfer: d, bubbles: true, cancelable: true}}))", file("dropped.png")),
            vec![],
        )
        .await;
    alice
        .until(
            "the pasted and dropped files",
            r#"const n = [...document.querySelectorAll('ul[aria-label="Attachments"] li')].map(l => l.textContent); return n.length === 4 && n.some(t => t.includes('pasted.png')) && n.some(t => t.includes('dropped.png')) && !document.querySelector('main.conversation[data-drop]')"#,
            "",
        )
        .await;
    alice
        .click(r#"button[aria-label="Remove pasted.png"]"#)
        .await;
    alice
        .click(r#"button[aria-label="Remove dropped.png"]"#)
        .await;
    alice.until("the two picked files", &chips(2), "").await;
    alice.screenshot(shots, "attachments-composer.png").await;
    alice
        .send_with_enter("Diagram and notes for the launch")
        .await;
    let att = bob.message("Diagram and notes for the launch").await;
    bob.until("the thumbnail", &format!(r#"const i = document.querySelector('{att} img[alt="launch-diagram.png"]'); return i && i.complete && i.naturalWidth > 0 && i.getAttribute('src').endsWith('/thumbnail')"#), "").await;
    bob.find(&format!(r#"{att} a[download="release-notes.pdf"]"#))
        .await;
    bob.screenshot(shots, "attachments.png").await;
    bob.click(&format!(
        r#"{att} button[aria-label="View image launch-diagram.png"]"#
    ))
    .await;
    bob.until("the lightbox", r#"const i = document.querySelector('dialog[open] img[alt="launch-diagram.png"]'); return i && i.complete && i.naturalWidth === 640"#, "").await;
    bob.press(Key::Escape).await;
    bob.until(
        "the lightbox to close",
        "return !document.querySelector('dialog[open]')",
        "",
    )
    .await;

    // 7. Search: bob finds the old message and jumps to it in context.
    bob.click(r#"button[aria-label="Search"]"#).await;
    let q = bob
        .find(r#"[role="search"] input[aria-label="Search messages"]"#)
        .await;
    q.send_keys("quarterly").await.unwrap();
    bob.find_text(r#"ul[aria-label="Search results"] button"#, "blue folder")
        .await;
    bob.find(r#"ul[aria-label="Search results"] mark"#).await;
    bob.screenshot(shots, "search.png").await;
    bob.click_text(r#"ul[aria-label="Search results"] button"#, "blue folder")
        .await;
    let found = bob.message(needle).await;
    bob.until("the jump", &format!(r#"const a = document.querySelector('{found}'), l = a.closest('[role=log]').getBoundingClientRect(), r = a.getBoundingClientRect(); return a.classList.contains('flash') && r.top >= l.top && r.bottom <= l.bottom"#), "").await;
    // The range around the hit is shown; "Jump to present" returns to the newest.
    bob.click_text("button.jump", "Jump to present").await;
    bob.wait_message("Diagram and notes for the launch", WAIT)
        .await;
    assert_eq!(bob.count_messages(needle).await, 0, "back at the present");

    // 8. DMs: alice starts one from bob's member card; it appears in bob's sidebar.
    alice
        .click_text(r#"aside[aria-label="Members"] button"#, "bob")
        .await;
    alice.click("dialog[open] .btn-primary").await;
    alice.until("the DM open", r#"return document.querySelector('h1.room-name').textContent.includes('bob') && document.querySelector('ul[aria-label="Direct messages"] a[aria-current="page"]')"#, "").await;
    alice
        .send_with_enter("Got a minute to talk about the launch?")
        .await;
    bob.until("the DM in bob's sidebar", r#"return [...document.querySelectorAll('ul[aria-label="Direct messages"] a')].some(a => a.textContent.includes(arguments[0]) && a.querySelector('.badge'))"#, "alice").await;
    bob.click_text(r#"ul[aria-label="Direct messages"] a"#, "alice")
        .await;
    bob.wait_message("Got a minute to talk about the launch?", WAIT)
        .await;
    bob.send_with_enter("Sure, calling you in 5").await;
    alice.wait_message("calling you in 5", WAIT).await;
    bob.until(
        "seen by alice",
        r#"return document.querySelector('.seen')?.textContent.includes('Seen by alice')"#,
        "",
    )
    .await;
    bob.screenshot(shots, "dm.png").await;

    // 9. A quote of an old message that is not loaded: clicking it loads the history
    // around the original (far back: a range, then "Jump to present").
    post(
        &a,
        &general,
        json!({ "body": "Still true? See the quote.", "reply_to": needle_id }),
    )
    .await;
    bob.client.refresh().await.expect("reload");
    bob.find(COMPOSER).await;
    bob.click(&general_link).await;
    let quote = bob.message("Still true? See the quote.").await;
    assert_eq!(
        bob.count_messages(needle).await,
        0,
        "the quoted message is not loaded yet"
    );
    bob.click(&format!("{quote} button.reply-ref")).await;
    bob.until(
        "the quoted message, flashed",
        &format!("const a = {ARTICLE}; return a && a.classList.contains('flash')"),
        needle,
    )
    .await;
    bob.click_text("button.jump", "Jump to present").await;
    bob.wait_message("Still true? See the quote.", WAIT).await;

    // 10. Notification level per room, from the header menu.
    alice.click(&general_link).await;
    alice
        .click(r#"button[aria-label="Notification settings"]"#)
        .await;
    alice
        .click_text(r#"[role="menu"] [role="menuitemradio"]"#, "Nothing")
        .await;
    let deadline = Instant::now() + WAIT;
    loop {
        let rooms = a.get("/api/v1/rooms").await;
        let level = rooms.body["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == general.as_str())
            .unwrap()["notification_level"]
            .clone();
        if level == "none" {
            break;
        }
        assert!(Instant::now() < deadline, "notification level is {level}");
        tokio::time::sleep(POLL).await;
    }
    alice
        .click(r#"button[aria-label="Notification settings"]"#)
        .await;
    alice.until("Nothing checked", r#"return document.querySelector('[role="menuitemradio"][aria-checked="true"]')?.textContent.includes('Nothing')"#, "").await;
    alice.press(Key::Escape).await;

    if shots.is_some() {
        bob.click(r#"button[aria-label="Toggle theme"]"#).await;
        bob.until(
            "dark theme",
            "return document.documentElement.dataset.theme === 'dark'",
            "",
        )
        .await;
        let m = bob.message(ship).await;
        bob.click(&format!("{m} button.thread-link")).await;
        bob.find(thread).await;
        bob.screenshot(shots, "thread-dark.png").await;
    }
}

/// Payloads that would run script if any client inserted them as HTML.
const XSS: [&str; 4] = [
    "<img src=x onerror=window.__xss=1>",
    "<script>window.__xss=1</script>",
    "[click me](javascript:window.__xss=1)",
    "<a href=\"javascript:window.__xss=1\">link</a><svg onload=window.__xss=1>",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_is_rendered_inert() {
    let Some(tools) = tools() else { return };
    let server = Server::start_with(&["--no-rate-limit"]).await;
    let victim = Browser::launch(&tools, "victim").await;
    let outcome = AssertUnwindSafe(xss_scenario(&server, &victim))
        .catch_unwind()
        .await;
    victim.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Nothing ran and nothing active made it into the page.
async fn assert_inert(b: &Browser, when: &str) {
    let v = b
        .eval(
            r#"return { xss: window.__xss ?? null, bad: [...document.querySelectorAll('script:not([src]), img[src="x"], [onerror], [onload], svg[onload], iframe, a[href^="javascript:" i]')].map(e => e.outerHTML) }"#,
            vec![],
        )
        .await;
    assert_eq!(v["xss"], Value::Null, "{when}: a payload ran");
    assert_eq!(v["bad"], json!([]), "{when}: active markup in the page");
}

async fn xss_scenario(server: &Server, victim: &Browser) {
    let base = server.base.clone();
    let mallory = server.register("mallory", PASSWORD).await;
    let general = mallory.general().await;
    let r = mallory
        .patch(
            "/api/v1/me",
            json!({ "display_name": XSS[0], "status_text": XSS[1], "bio": XSS[3] }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let room = mallory
        .create_room(json!({ "name": "lab", "topic": "initial", "guests_allowed": true }))
        .await;
    let room = room["id"]
        .as_str()
        .or(room["room"]["id"].as_str())
        .unwrap()
        .to_string();
    let r = mallory
        .patch(
            &format!("/api/v1/rooms/{room}"),
            json!({ "topic": format!("{} {}", XSS[1], XSS[0]) }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let file = upload(
        &mallory,
        &format!("{}.txt", XSS[0]),
        b"hello".to_vec(),
        "text/plain",
    )
    .await;
    let image = upload(
        &mallory,
        &format!("{}.png", XSS[1]),
        common::png(40, 30),
        "image/png",
    )
    .await;
    for target in [&general, &room] {
        for body in XSS {
            post(
                &mallory,
                target,
                json!({ "body": format!("payload {body} end") }),
            )
            .await;
        }
    }
    post(
        &mallory,
        &room,
        json!({ "body": "files", "attachment_ids": [file, image] }),
    )
    .await;

    victim.join_as_guest(&base, "victim", None, None).await;
    victim.wait_message("payload", WAIT).await;
    assert_inert(victim, "General").await;
    // The room link joins the room; its topic, names and files show as text.
    victim.goto(&format!("{base}/r/{room}")).await;
    victim.find(COMPOSER).await;
    victim.wait_message("files", WAIT).await;
    victim
        .until(
            "the topic as text",
            r#"return document.querySelector('.room-topic').textContent.includes(arguments[0])"#,
            XSS[1],
        )
        .await;
    victim
        .until(
            "the display name as text",
            r#"return document.querySelector('.msg-author').textContent === arguments[0]"#,
            XSS[0],
        )
        .await;
    victim
        .until("the file name as text", r#"return [...document.querySelectorAll('.att-text b')].some(b => b.textContent === arguments[0])"#, &format!("{}.txt", XSS[0]))
        .await;
    assert_inert(victim, "the room").await;
    // Search snippets are HTML too.
    victim.click(r#"button[aria-label="Search"]"#).await;
    let q = victim.find(r#"input[aria-label="Search messages"]"#).await;
    q.send_keys("payload").await.unwrap();
    victim.find(r#"ul[aria-label="Search results"] mark"#).await;
    assert_inert(victim, "search results").await;
    victim
        .click(r#"dialog[open] button[aria-label="Close"]"#)
        .await;
    victim
        .until(
            "the dialog to close",
            "return !document.querySelector('dialog[open]')",
            "",
        )
        .await;
    // The member card and the pinned list.
    victim
        .click_text(r#"aside[aria-label="Members"] button"#, XSS[0])
        .await;
    victim
        .until(
            "the card",
            r#"return document.querySelector('dialog[open]')?.textContent.includes(arguments[0])"#,
            XSS[3],
        )
        .await;
    assert_inert(victim, "the member card").await;
}
