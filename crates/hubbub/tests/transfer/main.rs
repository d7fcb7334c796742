//! `hubbub export` → `hubbub import` round trips: a chat filled through the API on
//! SQLite is exported, imported into a fresh SQLite database and (when
//! `HUBBUB_TEST_DATABASE_URL` is set) into a fresh PostgreSQL database, and a server on
//! the target answers exactly as the original did: rooms, every message with its
//! reactions, replies, edits, tombstones and attachments (same bytes), avatars (same
//! bytes), and passwords still work.

#[path = "../common/mod.rs"]
mod common;

use std::process::Stdio;

use common::*;
use serde_json::{Value, json};

const PW: &str = "correct-horse-battery";

struct Snapshot {
    rooms: Value,
    histories: Vec<(String, Value)>,
    avatar: Vec<u8>,
    attachment: Vec<u8>,
    attachment_url: String,
}

/// Fills a chat and returns what alice sees.
async fn fill(server: &Server) -> (Api, Snapshot) {
    let alice = server.register("alice", PW).await;
    let bob = server.register("bob", PW).await;
    let guest = server.guest("visitor").await;
    let r = alice
        .send(
            alice
                .request(reqwest::Method::PUT, "/api/v1/me/avatar")
                .header("content-type", "image/png")
                .body(png(300, 200)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let general = alice.general().await;
    let private = alice
        .create_room(json!({"name": "Secret", "kind": "private", "topic": "shh"}))
        .await;
    let private = private["id"].as_str().unwrap().to_string();
    let r = alice
        .post(
            &format!("/api/v1/rooms/{private}/invites"),
            json!({"user_id": bob.id()}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let timed = alice
        .create_room(json!({"name": "Workshop", "password": "pw123", "guests_allowed": true,
            "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z", "member_limit": 20}))
        .await;
    let timed = timed["id"].as_str().unwrap().to_string();
    let r = guest
        .post(
            &format!("/api/v1/rooms/{timed}/join"),
            json!({"password": "pw123"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dm = alice
        .post("/api/v1/dms", json!({"user_ids": [bob.id()]}))
        .await;
    assert_eq!(dm.status, 200, "{}", dm.body);
    let dm = dm.body["id"].as_str().unwrap().to_string();

    let send = |api: &Api, room: &str, body: Value| {
        let api = api.clone();
        let room = room.to_string();
        async move {
            let r = api
                .post(&format!("/api/v1/rooms/{room}/messages"), body)
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
            r.body
        }
    };
    let m1 = send(
        &alice,
        &general,
        json!({"body": "hello **all** @bob", "client_id": "c1"}),
    )
    .await;
    let m2 = send(&bob, &general, json!({"body": "hi", "reply_to": m1["id"]})).await;
    send(
        &bob,
        &general,
        json!({"body": "in thread", "thread_root": m1["id"]}),
    )
    .await;
    let gone = send(&bob, &general, json!({"body": "oops"})).await;
    assert_eq!(
        bob.delete(&format!(
            "/api/v1/messages/{}",
            gone["id"].as_str().unwrap()
        ))
        .await
        .status,
        204
    );
    let r = alice
        .patch(
            &format!("/api/v1/messages/{}", m1["id"].as_str().unwrap()),
            json!({"body": "hello **everyone** @bob"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for (api, emoji) in [(&alice, "👍"), (&bob, "👍"), (&bob, "🎉")] {
        let r = api
            .send(api.request(
                reqwest::Method::PUT,
                &format!(
                    "/api/v1/messages/{}/reactions/{emoji}",
                    m2["id"].as_str().unwrap()
                ),
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png(640, 480))
            .file_name("photo.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let up = alice
        .send(
            alice
                .request(reqwest::Method::POST, "/api/v1/uploads")
                .multipart(form),
        )
        .await;
    assert_eq!(up.status, 200, "{}", up.body);
    let att = send(
        &alice,
        &private,
        json!({"body": "", "attachment_ids": [up.body["id"]]}),
    )
    .await;
    send(&guest, &timed, json!({"body": "guest was here"})).await;
    send(&bob, &dm, json!({"body": "psst"})).await;
    let r = alice
        .put(
            &format!("/api/v1/messages/{}/pin", m1["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = alice
        .post(&format!("/api/v1/rooms/{general}/read"), json!({"seq": 2}))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);

    let snap = snapshot(
        &alice,
        &[general, private, timed, dm],
        att["attachments"][0]["url"].as_str().unwrap(),
    )
    .await;
    (alice, snap)
}

async fn snapshot(alice: &Api, rooms: &[String], attachment_url: &str) -> Snapshot {
    let mut list = alice.get("/api/v1/rooms").await.body;
    // Presence-free, order-stable comparison.
    if let Some(a) = list["rooms"].as_array_mut() {
        a.sort_by(|x, y| x["id"].as_str().cmp(&y["id"].as_str()));
    }
    let mut histories = Vec::new();
    for r in rooms {
        let h = alice
            .get(&format!("/api/v1/rooms/{r}/messages?limit=200"))
            .await;
        assert_eq!(h.status, 200, "{}", h.body);
        histories.push((r.clone(), h.body));
    }
    let me = alice.get("/api/v1/me").await.body;
    let avatar = alice.get(me["avatar_url"].as_str().unwrap()).await.bytes;
    let attachment = alice.get(attachment_url).await;
    assert_eq!(attachment.status, 200);
    Snapshot {
        rooms: list,
        histories,
        avatar,
        attachment: attachment.bytes,
        attachment_url: attachment_url.to_string(),
    }
}

fn run(args: &[&str], stdin: Option<&std::path::Path>) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"));
    cmd.args(args)
        .env_remove("HUBBUB_DATABASE_URL")
        .env_remove("HUBBUB_REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p).unwrap());
    }
    let out = cmd.output().expect("run hubbub");
    assert!(
        out.status.success(),
        "hubbub {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn round_trip(target_db: Option<&str>) {
    let mut source = Server::start_with(&["--no-rate-limit"]).await;
    let (alice, before) = fill(&source).await;
    let rooms: Vec<String> = before.histories.iter().map(|(r, _)| r.clone()).collect();
    let status = source.terminate().await;
    assert!(status.success());

    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("export.jsonl");
    let src_dir = source.data_dir.to_str().unwrap().to_string();
    run(
        &[
            "export",
            "--data-dir",
            &src_dir,
            "--output",
            dump.to_str().unwrap(),
        ],
        None,
    );
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(
        text.starts_with("{\"kind\":\"header\""),
        "export starts with its header"
    );

    let target_dir = work.path().join("target-data");
    let target_dir_s = target_dir.to_str().unwrap().to_string();
    let mut args = vec!["import", "--data-dir", &target_dir_s];
    if let Some(url) = target_db {
        args.extend(["--database-url", url]);
    }
    run(&args, Some(&dump));

    // A server on the target: same data dir for files, the target database.
    let mut serve_args = vec!["--no-rate-limit".to_string()];
    if let Some(url) = target_db {
        serve_args.extend(["--database-url".to_string(), url.to_string()]);
    }
    let serve_refs: Vec<&str> = serve_args.iter().map(String::as_str).collect();
    let target = Server::start_in(&target_dir, &serve_refs).await;
    // Same token is not portable (sessions are not exported): sign in again.
    let r = target
        .http()
        .post(
            "/api/v1/auth/login",
            json!({"username": "alice", "password": PW}),
        )
        .await;
    assert_eq!(r.status, 200, "password survives the move: {}", r.body);
    let alice2 = target.api_with(r.body["token"].as_str().unwrap(), r.body["user"].clone());
    assert_eq!(alice2.id(), alice.id());
    let after = snapshot(&alice2, &rooms, &before.attachment_url).await;
    assert_eq!(
        after.rooms, before.rooms,
        "rooms with counters and read state"
    );
    for ((room, a), (_, b)) in after.histories.iter().zip(&before.histories) {
        assert_eq!(a, b, "every message of room {room}");
    }
    assert_eq!(after.avatar, before.avatar, "avatar bytes");
    assert_eq!(after.attachment, before.attachment, "attachment bytes");
    // The target goes on: a new message takes the next seq.
    let general = &rooms[0];
    let r = alice2
        .post(
            &format!("/api/v1/rooms/{general}/messages"),
            json!({"body": "after the move"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let last = before.histories[0].1["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["seq"]
        .as_i64()
        .unwrap();
    assert_eq!(r.body["seq"].as_i64().unwrap(), last + 1);
}

#[tokio::test]
async fn sqlite_to_sqlite_keeps_everything() {
    round_trip(None).await;
}

#[tokio::test]
async fn sqlite_to_postgres_keeps_everything() {
    let Ok(pg) = std::env::var("HUBBUB_TEST_DATABASE_URL") else {
        skip("the PostgreSQL round trip needs HUBBUB_TEST_DATABASE_URL");
        return;
    };
    let db = Database::create(&pg).await;
    round_trip(Some(&db.url)).await;
}

#[tokio::test]
async fn import_refuses_a_database_that_is_not_empty() {
    let mut server = Server::start_with(&["--no-rate-limit"]).await;
    server.register("alice", PW).await;
    server.terminate().await;
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("x.jsonl");
    let dir = server.data_dir.to_str().unwrap().to_string();
    run(
        &[
            "export",
            "--data-dir",
            &dir,
            "--output",
            dump.to_str().unwrap(),
        ],
        None,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hubbub"))
        .args([
            "import",
            "--data-dir",
            &dir,
            "--input",
            dump.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "importing into a database with users must fail"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty database"));
}
