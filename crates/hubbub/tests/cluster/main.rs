//! Multi-node tests (SPEC §9): several real `hubbub serve` processes on one PostgreSQL
//! database and one Redis, with clients spread across them.
//!
//! Needs `HUBBUB_TEST_DATABASE_URL` (a PostgreSQL server; each test creates and drops
//! its own database) and `HUBBUB_TEST_REDIS_URL` (each test uses its own key prefix).
//! The Redis-restart test runs a private `redis-server` it can restart; the PostgreSQL
//! outage test puts a TCP proxy between the node and PostgreSQL and cuts it — both are
//! real faults that leave the other tests' services alone.

#[path = "../common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PW: &str = "correct-horse-battery";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The services, or None (with one line saying why) when they are not configured.
fn services() -> Option<(String, String)> {
    match (
        env("HUBBUB_TEST_DATABASE_URL"),
        env("HUBBUB_TEST_REDIS_URL"),
    ) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ => {
            skip("cluster tests need HUBBUB_TEST_DATABASE_URL and HUBBUB_TEST_REDIS_URL");
            None
        }
    }
}

/// N nodes on one database and one Redis prefix.
struct Cluster {
    nodes: Vec<Server>,
    _db: Database,
}

async fn cluster(n: usize, redis: &str, pg: &str, extra: &[&str]) -> Cluster {
    let db = Database::create(pg).await;
    let prefix = format!("hubbub-test-{}", uuid_like());
    let mut nodes = Vec::new();
    for _ in 0..n {
        let mut args = vec![
            "--no-rate-limit",
            "--database-url",
            &db.url,
            "--redis-url",
            redis,
            "--redis-prefix",
            &prefix,
        ];
        args.extend_from_slice(extra);
        nodes.push(Server::start_with(&args).await);
    }
    Cluster { nodes, _db: db }
}

/// A client of a given node: same account, other node.
fn on(node: &Server, api: &Api) -> Api {
    let mut a = api.clone();
    a.base = node.base.clone();
    a.ws = node.ws_url();
    a
}

fn msg_bodies(frames: &[Value], room: &str) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["type"] == "message" && f["message"]["room_id"] == room)
        .map(|f| f["message"]["body"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Reads frames until `pred` has seen what it wants; returns everything read.
async fn read_until(
    ws: &mut Ws,
    wait: Duration,
    mut done: impl FnMut(&[Value]) -> bool,
) -> Vec<Value> {
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while !done(&frames) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.recv_within(left).await {
            Some(f) => frames.push(f),
            None => break,
        }
    }
    frames
}

async fn general_of(api: &Api) -> String {
    api.general().await
}

#[tokio::test]
async fn three_nodes_behave_as_one() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let c = cluster(3, &redis, &pg, &[]).await;
    let (a, b, n3) = (&c.nodes[0], &c.nodes[1], &c.nodes[2]);
    let alice = a.register("alice", PW).await;
    let bob = b.register("bob", PW).await;
    let carol = n3.register("carol", PW).await;
    let room = general_of(&alice).await;

    let mut wa = alice.connect().await;
    let mut wb = bob.connect().await;
    let mut wc = carol.connect().await;

    // Presence: carol (node 3) is seen online by alice (node 1) in ready or via events.
    let carol_id = carol.id();
    let online_in_ready = wa.ready["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == carol_id.as_str() && u["status"] == "online");
    if !online_in_ready {
        read_until(&mut wa, WAIT, |fs| {
            fs.iter().any(|f| {
                f["type"] == "presence"
                    && f["user_id"] == carol_id.as_str()
                    && f["status"] == "online"
            })
        })
        .await;
    }

    // Concurrent senders on three nodes.
    let per = 10;
    let mut tasks = Vec::new();
    for (who, api) in [
        ("a", alice.clone()),
        ("b", bob.clone()),
        ("c", carol.clone()),
    ] {
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            let mut ws = api.connect().await;
            for i in 0..per {
                ws.send_message(&room, &format!("{who}{i}")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = 3 * per;
    let mut orders = Vec::new();
    for ws in [&mut wa, &mut wb, &mut wc] {
        let frames = read_until(ws, WAIT, |fs| msg_bodies(fs, &room).len() >= total).await;
        let seqs: Vec<i64> = frames
            .iter()
            .filter(|f| f["type"] == "message" && f["message"]["room_id"] == room.as_str())
            .map(|f| f["message"]["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(
            seqs.len(),
            total,
            "every message reaches every node's clients exactly once"
        );
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "seq order with no gap: {seqs:?}"
        );
        orders.push(msg_bodies(&frames, &room));
    }
    assert_eq!(orders[0], orders[1], "same order on nodes 1 and 2");
    assert_eq!(orders[1], orders[2], "same order on nodes 2 and 3");

    // An edit on node 2 reaches nodes 1 and 3.
    let m = wb.send_message(&room, "to be edited").await;
    let r = wb
        .request(json!({"type": "edit", "message_id": m["id"], "body": "edited!"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    for ws in [&mut wa, &mut wc] {
        let fs = read_until(ws, WAIT, |fs| {
            fs.iter()
                .any(|f| f["type"] == "message_updated" && f["message"]["body"] == "edited!")
        })
        .await;
        assert!(
            fs.iter()
                .any(|f| f["type"] == "message_updated" && f["message"]["body"] == "edited!")
        );
    }

    // A reaction on node 2 reaches nodes 1 and 3 with its reaction_change.
    let r = wb
        .request(json!({"type": "react", "message_id": m["id"], "emoji": "🎉", "add": true}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    for ws in [&mut wa, &mut wc] {
        let fs = read_until(ws, WAIT, |fs| {
            fs.iter()
                .any(|f| f["type"] == "message_updated" && f["reaction_change"]["emoji"] == "🎉")
        })
        .await;
        let ev = fs
            .iter()
            .find(|f| f["type"] == "message_updated" && f["reaction_change"]["emoji"] == "🎉")
            .expect("reaction reached another node");
        assert_eq!(ev["reaction_change"]["user_id"], bob.id().as_str());
        assert_eq!(ev["message"]["reactions"][0]["count"], 1);
    }

    // Typing on node 3 reaches nodes 1 and 2, never the typist.
    let r = wc
        .request(json!({"type": "typing", "room_id": room, "active": true}))
        .await;
    assert_eq!(r["ok"], true);
    for ws in [&mut wa, &mut wb] {
        let fs = read_until(ws, WAIT, |fs| {
            fs.iter().any(|f| {
                f["type"] == "typing"
                    && f["user_ids"]
                        .as_array()
                        .is_some_and(|u| u.contains(&json!(carol_id)))
            })
        })
        .await;
        assert!(!fs.is_empty(), "typing reached another node");
    }

    // One client_id through two nodes: one message.
    let r1 = alice
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"body": "once", "client_id": "dup-1"}),
        )
        .await;
    let alice_on_3 = on(n3, &alice);
    let r2 = alice_on_3
        .post(
            &format!("/api/v1/rooms/{room}/messages"),
            json!({"body": "once", "client_id": "dup-1"}),
        )
        .await;
    assert_eq!(r1.status, 200, "{}", r1.body);
    assert_eq!(r2.status, 200, "{}", r2.body);
    assert_eq!(
        r1.body["id"], r2.body["id"],
        "the retry returned the original"
    );
    let hist = alice
        .get(&format!("/api/v1/rooms/{room}/messages?limit=200"))
        .await;
    let once = hist.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["body"] == "once")
        .count();
    assert_eq!(once, 1);
}

#[tokio::test]
async fn a_killed_node_loses_nothing_and_its_users_go_offline() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let mut c = cluster(3, &redis, &pg, &["--presence-grace-ms", "1000"]).await;
    let alice = c.nodes[0].register("alice", PW).await;
    let bob = c.nodes[1].register("bob", PW).await;
    let dave = c.nodes[1].register("dave", PW).await;
    let room = general_of(&alice).await;
    let mut wa = alice.connect().await;
    let mut wb = bob.connect().await;
    let _wd = dave.connect().await;

    let first = wa.send_message(&room, "before").await;
    let fs = read_until(&mut wb, WAIT, |fs| {
        msg_bodies(fs, &room).contains(&"before".to_string())
    })
    .await;
    let last_pos = fs
        .iter()
        .filter_map(|f| f["pos"].as_i64())
        .max()
        .unwrap_or(first["pos"].as_i64().unwrap());

    // Node 2 dies with bob's and dave's connections on it.
    c.nodes[1].kill9().await;
    let mut sent = Vec::new();
    for i in 0..5 {
        sent.push(
            wa.send_message(&room, &format!("during-{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // Bob reconnects to node 3 and resumes.
    let bob3 = on(&c.nodes[2], &bob);
    let mut wb3 = bob3.connect().await;
    let (r, live) = common::chat::call(
        &mut wb3,
        json!({"type": "resume", "rooms": {room.clone(): last_pos}}),
    )
    .await;
    assert_eq!(r["ok"], true, "{r}");
    // Node 3 may deliver some of them live (its bus can lag behind the sends) before
    // the resume reply; the reply then leaves those out. Together: each exactly once.
    let mut got: Vec<String> = live
        .iter()
        .filter(|f| f["type"] == "message" && f["message"]["room_id"] == json!(room))
        .map(|f| f["message"]["id"].as_str().unwrap().to_string())
        .collect();
    got.extend(
        r["data"]["rooms"][0]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string()),
    );
    let got_set: HashSet<_> = got.iter().cloned().collect();
    assert_eq!(
        got.len(),
        got_set.len(),
        "no duplicates across live and resume"
    );
    for id in &sent {
        assert!(
            got_set.contains(id),
            "a message sent while bob's node was dead reaches him on the new node"
        );
    }
    // Live delivery continues on the new node.
    wa.send_message(&room, "after").await;
    let fs = read_until(&mut wb3, WAIT, |fs| {
        msg_bodies(fs, &room).contains(&"after".to_string())
    })
    .await;
    assert_eq!(
        msg_bodies(&fs, &room)
            .iter()
            .filter(|b| b.starts_with("during"))
            .count(),
        0,
        "nothing twice"
    );

    // Dave never came back: alice sees him offline within 30 s of the node dying.
    let dave_id = dave.id();
    let fs = read_until(&mut wa, Duration::from_secs(40), |fs| {
        fs.iter().any(|f| {
            f["type"] == "presence" && f["user_id"] == dave_id.as_str() && f["status"] == "offline"
        })
    })
    .await;
    assert!(
        fs.iter().any(|f| f["type"] == "presence"
            && f["user_id"] == dave_id.as_str()
            && f["status"] == "offline"),
        "dave went offline after his node died"
    );
    // Bob reconnected elsewhere: he is not announced offline.
    assert!(!fs.iter().any(|f| f["type"] == "presence"
        && f["user_id"] == bob.id().as_str()
        && f["status"] == "offline"));
}

/// A private Redis this test may restart.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        PrivateRedis {
            port,
            child: Some(child),
        }
    }
    async fn wait_ready(&self) {
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start");
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_redis_restart_loses_nothing_acknowledged() {
    let Some((pg, _)) = services() else { return };
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("redis-server is needed for the Redis restart test");
    }
    let port = free_port().await;
    let mut redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let url = format!("redis://127.0.0.1:{port}");
    let c = cluster(2, &url, &pg, &[]).await;
    let alice = c.nodes[0].register("alice", PW).await;
    let bob = c.nodes[1].register("bob", PW).await;
    let room = general_of(&alice).await;
    let mut wa = alice.connect().await;
    let mut wb = bob.connect().await;

    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(
            wa.send_message(&room, &format!("before-{i}")).await["body"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut seen = read_until(&mut wb, WAIT, |fs| msg_bodies(fs, &room).len() >= 3).await;

    redis.stop();
    // Node 1 keeps serving its own clients, says it is not ready, and acknowledges
    // what it stored.
    for i in 0..3 {
        expected.push(
            wa.send_message(&room, &format!("during-{i}")).await["body"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let ready = c.nodes[0].http().get("/readyz").await;
    assert_eq!(ready.status, 503, "not ready without Redis");

    let redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    // Without anything else being sent, bob's node fills the gap once its bus is back.
    seen.extend(
        read_until(&mut wb, Duration::from_secs(30), |fs| {
            msg_bodies(fs, &room).len() >= 3
        })
        .await,
    );
    for i in 0..3 {
        expected.push(
            wa.send_message(&room, &format!("after-{i}")).await["body"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    seen.extend(read_until(&mut wb, WAIT, |fs| msg_bodies(fs, &room).len() >= 3).await);
    let got = msg_bodies(&seen, &room);
    assert_eq!(got, expected, "every acknowledged message, once, in order");
    // Ready again.
    let mut ok = false;
    for _ in 0..100 {
        if c.nodes[0].http().get("/readyz").await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "ready again once Redis is back");
    drop(redis);
}

/// A TCP proxy that can be cut (existing connections dropped, new ones refused).
struct Proxy {
    port: u16,
    up: watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, rx) = watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                if !*rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect((target.0.as_str(), target.1)).await
                    else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { port, up }
    }
    fn cut(&self) {
        let _ = self.up.send(false);
    }
    fn restore(&self) {
        let _ = self.up.send(true);
    }
}

#[tokio::test]
async fn a_postgres_outage_fails_sends_clearly_and_the_node_recovers() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let db = Database::create(&pg).await;
    let target = {
        let rest = pg.split_once("://").unwrap().1;
        let hostport = rest.split('/').next().unwrap();
        let hostport = hostport
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or(hostport);
        let (h, p) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
        (h.to_string(), p.parse::<u16>().unwrap())
    };
    let proxy = Proxy::start(target).await;
    let prefix = format!("hubbub-test-{}", uuid_like());
    let url = db.url_via(proxy.port);
    let node = Server::start_with(&[
        "--no-rate-limit",
        "--database-url",
        &url,
        "--redis-url",
        &redis,
        "--redis-prefix",
        &prefix,
        "--db-acquire-timeout-ms",
        "1500",
    ])
    .await;
    let alice = node.register("alice", PW).await;
    let room = general_of(&alice).await;
    let mut ws = alice.connect().await;
    ws.send_message(&room, "stored").await;

    proxy.cut();
    let r = ws
        .request(
            json!({"type": "send", "room_id": room, "client_id": "lost-1", "body": "not stored"}),
        )
        .await;
    assert_eq!(
        r["ok"], false,
        "a send must fail while the database is down: {r}"
    );
    assert_eq!(r["error"]["code"], "internal", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("database")),
        "a clear message: {r}"
    );
    assert_eq!(node.http().get("/readyz").await.status, 503);

    proxy.restore();
    let mut sent = None;
    for _ in 0..100 {
        let r = ws
            .request(
                json!({"type": "send", "room_id": room, "client_id": "after-1", "body": "after"}),
            )
            .await;
        if r["ok"] == true {
            sent = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(sent.is_some(), "the node recovers by itself");
    let hist = alice.get(&format!("/api/v1/rooms/{room}/messages")).await;
    let bodies: Vec<&str> = hist.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["stored", "after"],
        "nothing acknowledged is missing, nothing unacknowledged is stored"
    );
}
