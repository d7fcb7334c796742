//! SPEC §10: every bad input gets a clear error and changes nothing; rate limits.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::support::*;

enum Body {
    Json(Value),
    Raw(Vec<u8>),
}

struct Case {
    name: String,
    method: Method,
    path: String,
    body: Body,
    code: &'static str,
    /// None: don't check; Some(None): must be null; Some(Some(f)): must be f.
    field: Option<Option<&'static str>>,
}

fn case(
    name: &str,
    method: Method,
    path: &str,
    body: Body,
    code: &'static str,
    field: Option<Option<&'static str>>,
) -> Case {
    Case {
        name: name.to_string(),
        method,
        path: path.to_string(),
        body,
        code,
        field,
    }
}

fn j(v: Value) -> Body {
    Body::Json(v)
}

fn rawb(b: &[u8]) -> Body {
    Body::Raw(b.to_vec())
}

async fn run(api: &Api, c: &Case) -> Resp {
    let rb = api.request(c.method.clone(), &c.path);
    let rb = match &c.body {
        Body::Json(v) => rb.json(v),
        Body::Raw(b) => rb
            .header("Content-Type", "application/json")
            .body(b.clone()),
    };
    api.send(rb).await
}

/// Checks an error answer against a case; returns a description of what is wrong.
fn check(r: &Resp, c: &Case) -> Option<String> {
    let what = format!("{} ({} {})", c.name, c.method, c.path);
    let statuses = statuses_for(c.code);
    if !statuses.contains(&r.status) || r.code() != c.code {
        return Some(format!(
            "{what}: expected {} (HTTP {statuses:?}), got {} {}",
            c.code,
            r.status,
            text(r)
        ));
    }
    if r.body["error"]["message"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Some(format!("{what}: error without a message: {}", text(r)));
    }
    if c.code == "invalid" {
        match c.field {
            Some(Some(f)) if r.body["error"]["field"] != json!(f) => {
                return Some(format!("{what}: expected field {f:?}, got {}", text(r)));
            }
            Some(None) if !r.body["error"]["field"].is_null() => {
                return Some(format!("{what}: expected field null, got {}", text(r)));
            }
            _ => {}
        }
    }
    None
}

/// Everything a bad request might have changed, as seen by `api`.
async fn snapshot(api: &Api, general: &str) -> Value {
    let me = me(api).await;
    let mut rooms: Vec<String> = rooms(api)
        .await
        .iter()
        .map(|r| {
            json!([
                r["id"],
                r["name"],
                r["topic"],
                r["kind"],
                r["member_count"],
                r["last_seq"],
                r["pos"],
                r["has_password"]
            ])
            .to_string()
        })
        .collect();
    rooms.sort();
    let msgs: Vec<Value> = all_messages(api, general)
        .await
        .iter()
        .map(|m| {
            json!([
                m["id"],
                m["seq"],
                m["pos"],
                m["body"],
                m["edited_at"],
                m["deleted"],
                m["reactions"]
            ])
        })
        .collect();
    let users = api.get("/api/v1/users?q=").await.body;
    json!({"me": me, "rooms": rooms, "general": msgs, "users": users})
}

#[tokio::test]
async fn bad_input_table_every_case_is_refused_and_changes_nothing() {
    let server = fast().await;
    let (_root, alice, _bob) = trio(&server).await;
    let general = alice.general().await;
    let mine = send(&alice, &general, "an existing message").await;
    let mid = s(&mine["id"]);
    let anon = server.http();

    let msgs = format!("/api/v1/rooms/{general}/messages");
    let edit = format!("/api/v1/messages/{mid}");
    let read = format!("/api/v1/rooms/{general}/read");
    let later = rfc3339_from_now(7200);
    let sooner = rfc3339_from_now(3600);
    let p = Method::POST;
    let pa = Method::PATCH;
    let emoji4001 = "😀".repeat(4001);
    let long_name = "n".repeat(5000);

    // Cases made as alice (bearer).
    let cases = vec![
        // sending
        case(
            "not JSON",
            p.clone(),
            &msgs,
            rawb(b"this is not json"),
            "invalid",
            Some(None),
        ),
        case(
            "JSON array",
            p.clone(),
            &msgs,
            rawb(b"[1,2,3]"),
            "invalid",
            Some(None),
        ),
        case(
            "JSON string",
            p.clone(),
            &msgs,
            rawb(b"\"hello\""),
            "invalid",
            Some(None),
        ),
        case(
            "JSON null",
            p.clone(),
            &msgs,
            rawb(b"null"),
            "invalid",
            Some(None),
        ),
        case(
            "empty body",
            p.clone(),
            &msgs,
            rawb(b""),
            "invalid",
            Some(None),
        ),
        case(
            "truncated JSON",
            p.clone(),
            &msgs,
            rawb(b"{\"body\": \"hi"),
            "invalid",
            Some(None),
        ),
        case(
            "missing body",
            p.clone(),
            &msgs,
            j(json!({"client_id": "x1"})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "body wrong type",
            p.clone(),
            &msgs,
            j(json!({"body": 123})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "body null",
            p.clone(),
            &msgs,
            j(json!({"body": null})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "empty message",
            p.clone(),
            &msgs,
            j(json!({"body": ""})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "whitespace-only message",
            p.clone(),
            &msgs,
            j(json!({"body": "  \n\t \u{3000} "})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "4001 code points",
            p.clone(),
            &msgs,
            j(json!({"body": emoji4001})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "client_id of 65 chars",
            p.clone(),
            &msgs,
            j(json!({"body": "x", "client_id": "c".repeat(65)})),
            "invalid",
            Some(Some("client_id")),
        ),
        case(
            "client_id wrong type",
            p.clone(),
            &msgs,
            j(json!({"body": "x", "client_id": 7})),
            "invalid",
            Some(Some("client_id")),
        ),
        case(
            "reply_to wrong type",
            p.clone(),
            &msgs,
            j(json!({"body": "x", "reply_to": 7})),
            "invalid",
            Some(Some("reply_to")),
        ),
        case(
            "invalid UTF-8 in a message",
            p.clone(),
            &msgs,
            rawb(b"{\"body\": \"caf\xc3\x28 \xff\xfe\"}"),
            "invalid",
            None,
        ),
        // editing
        case(
            "edit: not JSON",
            pa.clone(),
            &edit,
            rawb(b"<xml/>"),
            "invalid",
            Some(None),
        ),
        case(
            "edit: missing body",
            pa.clone(),
            &edit,
            j(json!({})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "edit: empty body",
            pa.clone(),
            &edit,
            j(json!({"body": " "})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "edit: wrong type",
            pa.clone(),
            &edit,
            j(json!({"body": ["x"]})),
            "invalid",
            Some(Some("body")),
        ),
        case(
            "edit: 4001 code points",
            pa.clone(),
            &edit,
            j(json!({"body": "é".repeat(4001)})),
            "invalid",
            Some(Some("body")),
        ),
        // profile
        case(
            "profile: not JSON",
            pa.clone(),
            "/api/v1/me",
            rawb(b"display_name=x"),
            "invalid",
            Some(None),
        ),
        case(
            "display_name of 65",
            pa.clone(),
            "/api/v1/me",
            j(json!({"display_name": "d".repeat(65)})),
            "invalid",
            Some(Some("display_name")),
        ),
        case(
            "bio of 501",
            pa.clone(),
            "/api/v1/me",
            j(json!({"bio": "b".repeat(501)})),
            "invalid",
            Some(Some("bio")),
        ),
        case(
            "status_text of 101",
            pa.clone(),
            "/api/v1/me",
            j(json!({"status_text": "s".repeat(101)})),
            "invalid",
            Some(Some("status_text")),
        ),
        case(
            "display_name wrong type",
            pa.clone(),
            "/api/v1/me",
            j(json!({"display_name": 5})),
            "invalid",
            Some(Some("display_name")),
        ),
        case(
            "bio wrong type",
            pa.clone(),
            "/api/v1/me",
            j(json!({"bio": {"a": 1}})),
            "invalid",
            Some(Some("bio")),
        ),
        case(
            "invalid UTF-8 in display_name",
            pa.clone(),
            "/api/v1/me",
            rawb(b"{\"display_name\": \"\xff\xfe\xfd\"}"),
            "invalid",
            None,
        ),
        // rooms
        case(
            "room: not JSON",
            p.clone(),
            "/api/v1/rooms",
            rawb(b"name=x"),
            "invalid",
            Some(None),
        ),
        case(
            "room: missing name",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"topic": "t"})),
            "invalid",
            Some(Some("name")),
        ),
        case(
            "room: empty name",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": ""})),
            "invalid",
            Some(Some("name")),
        ),
        case(
            "room: blank name",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "   "})),
            "invalid",
            Some(Some("name")),
        ),
        case(
            "room: name too long",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": long_name})),
            "invalid",
            Some(Some("name")),
        ),
        case(
            "room: name wrong type",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": 42})),
            "invalid",
            Some(Some("name")),
        ),
        case(
            "room: invalid UTF-8 name",
            p.clone(),
            "/api/v1/rooms",
            rawb(b"{\"name\": \"r\xc0\xafoom\"}"),
            "invalid",
            None,
        ),
        case(
            "room: bad kind",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "kind": "secret-ish"})),
            "invalid",
            Some(Some("kind")),
        ),
        case(
            "room: member_limit 0",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "member_limit": 0})),
            "invalid",
            Some(Some("member_limit")),
        ),
        case(
            "room: member_limit negative",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "member_limit": -3})),
            "invalid",
            Some(Some("member_limit")),
        ),
        case(
            "room: member_limit wrong type",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "member_limit": "ten"})),
            "invalid",
            Some(Some("member_limit")),
        ),
        case(
            "room: starts_at not a time",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "starts_at": "tomorrow"})),
            "invalid",
            Some(Some("starts_at")),
        ),
        case(
            "room: ends_at impossible date",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "ends_at": "2030-13-45T99:00:00Z"})),
            "invalid",
            Some(Some("ends_at")),
        ),
        case(
            "room: ends before it starts",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "starts_at": later, "ends_at": sooner})),
            "invalid",
            None,
        ),
        case(
            "room: guests_allowed wrong type",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "guests_allowed": "yes"})),
            "invalid",
            Some(Some("guests_allowed")),
        ),
        case(
            "room: password wrong type",
            p.clone(),
            "/api/v1/rooms",
            j(json!({"name": "k", "password": 12345678})),
            "invalid",
            Some(Some("password")),
        ),
        // read marker
        case(
            "read: seq wrong type",
            p.clone(),
            &read,
            j(json!({"seq": "three"})),
            "invalid",
            Some(Some("seq")),
        ),
        case(
            "read: missing seq",
            p.clone(),
            &read,
            j(json!({})),
            "invalid",
            Some(Some("seq")),
        ),
        // reactions
        case(
            "reaction with whitespace",
            Method::PUT,
            &format!("/api/v1/messages/{mid}/reactions/a%20b"),
            j(json!({})),
            "invalid",
            None,
        ),
        case(
            "reaction over 32 bytes",
            Method::PUT,
            &format!("/api/v1/messages/{mid}/reactions/{}", "x".repeat(33)),
            j(json!({})),
            "invalid",
            None,
        ),
    ];

    // Every failing case is collected and reported together.
    let mut failures: Vec<String> = Vec::new();
    let before = snapshot(&alice, &general).await;
    for c in &cases {
        let r = run(&alice, c).await;
        failures.extend(check(&r, c));
        let now = snapshot(&alice, &general).await;
        if now != before {
            failures.push(format!(
                "{}: state changed by a refused request: {now}",
                c.name
            ));
            break; // later comparisons would all fail too
        }
    }

    // Query parameters.
    for q in ["limit=abc", "before_seq=x", "after_seq=1.5", "limit=-1"] {
        let c = case(
            &format!("history ?{q}"),
            Method::GET,
            &format!("{msgs}?{q}"),
            j(json!(null)),
            "invalid",
            None,
        );
        let r = alice.get(&c.path).await;
        failures.extend(check(&r, &c));
    }

    // Anonymous endpoints: sign-up and login.
    let reg = "/api/v1/auth/register";
    let anon_cases = vec![
        case(
            "register: not JSON",
            p.clone(),
            reg,
            rawb(b"username=x&password=y"),
            "invalid",
            Some(None),
        ),
        case(
            "register: username too short",
            p.clone(),
            reg,
            j(json!({"username": "z", "password": PW})),
            "invalid",
            Some(Some("username")),
        ),
        case(
            "register: username too long",
            p.clone(),
            reg,
            j(json!({"username": "z".repeat(33), "password": PW})),
            "invalid",
            Some(Some("username")),
        ),
        case(
            "register: username with space",
            p.clone(),
            reg,
            j(json!({"username": "zed zed", "password": PW})),
            "invalid",
            Some(Some("username")),
        ),
        case(
            "register: username with bad chars",
            p.clone(),
            reg,
            j(json!({"username": "zed<script>", "password": PW})),
            "invalid",
            Some(Some("username")),
        ),
        case(
            "register: username wrong type",
            p.clone(),
            reg,
            j(json!({"username": 12345, "password": PW})),
            "invalid",
            Some(Some("username")),
        ),
        case(
            "register: missing username",
            p.clone(),
            reg,
            j(json!({"password": PW})),
            "invalid",
            Some(Some("username")),
        ),
        case(
            "register: password of 7",
            p.clone(),
            reg,
            j(json!({"username": "zedzed", "password": "1234567"})),
            "invalid",
            Some(Some("password")),
        ),
        case(
            "register: missing password",
            p.clone(),
            reg,
            j(json!({"username": "zedzed"})),
            "invalid",
            Some(Some("password")),
        ),
        case(
            "register: display_name of 65",
            p.clone(),
            reg,
            j(json!({"username": "zedzed", "password": PW, "display_name": "d".repeat(65)})),
            "invalid",
            Some(Some("display_name")),
        ),
        case(
            "register: invalid UTF-8 username",
            p.clone(),
            reg,
            rawb(b"{\"username\": \"zed\xff\", \"password\": \"correct-horse-battery\"}"),
            "invalid",
            None,
        ),
        case(
            "guest: name too short",
            p.clone(),
            "/api/v1/auth/guest",
            j(json!({"name": "z"})),
            "invalid",
            Some(Some("name")),
        ),
        case(
            "guest: missing name",
            p.clone(),
            "/api/v1/auth/guest",
            j(json!({})),
            "invalid",
            Some(Some("name")),
        ),
        case(
            "guest: invalid UTF-8 name",
            p.clone(),
            "/api/v1/auth/guest",
            rawb(b"{\"name\": \"zed\xfe\"}"),
            "invalid",
            None,
        ),
        case(
            "guest: not JSON",
            p.clone(),
            "/api/v1/auth/guest",
            rawb(b"zed"),
            "invalid",
            Some(None),
        ),
        case(
            "login: not JSON",
            p.clone(),
            "/api/v1/auth/login",
            rawb(b"user=zed"),
            "invalid",
            Some(None),
        ),
    ];
    for c in &anon_cases {
        let r = run(&anon, c).await;
        failures.extend(check(&r, c));
        if !r.body["token"].is_null() {
            failures.push(format!("{}: a token was issued", c.name));
        }
        if snapshot(&alice, &general).await != before {
            failures.push(format!("{}: state changed by a refused request", c.name));
        }
    }
    // Nobody called zed/zedzed exists afterwards.
    let r = alice.get("/api/v1/users?q=zed").await;
    ok(&r, "search");
    if r.body["users"] != json!([]) {
        failures.push(format!("a refused sign-up created a user: {}", r.body));
    }
    let r = login(&server, "zedzed", PW).await;
    if r.status != 401 {
        failures.push(format!(
            "login as a refused sign-up: {} {}",
            r.status,
            text(&r)
        ));
    }
    assert!(
        failures.is_empty(),
        "{} bad-input case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The server keeps serving everyone.
    send(&alice, &general, "still fine").await;
}

#[tokio::test]
async fn boundary_values_are_accepted_and_unknown_fields_ignored() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let general = alice.general().await;
    let m = send(&alice, &general, &"😀".repeat(4000)).await;
    assert_eq!(
        m["body"].as_str().unwrap().chars().count(),
        4000,
        "4000 code points are fine"
    );
    let r = send_raw(
        &alice,
        &general,
        json!({"body": "x", "client_id": "c".repeat(64)}),
    )
    .await;
    ok(&r, "client_id of 64 chars");
    let r = send_raw(
        &alice,
        &general,
        json!({"body": "extra", "client_id": "u1", "no_such_field": {"x": 1}}),
    )
    .await;
    ok(&r, "unknown fields in a message are ignored");
    assert_eq!(r.body["body"], "extra");
    let r = alice
        .patch(
            "/api/v1/me",
            json!({"status_text": "ok", "is_admin": true, "evil": 1}),
        )
        .await;
    ok(&r, "unknown fields in PATCH /me are ignored");
    let me_now = me(&alice).await;
    assert_eq!(me_now["status_text"], "ok");
    assert_eq!(me_now["is_admin"], false, "is_admin is not client-settable");
    let r = alice
        .post(
            "/api/v1/rooms",
            json!({"name": "extra", "whatever": [1, 2]}),
        )
        .await;
    ok(&r, "unknown fields in POST /rooms are ignored");
    let r = server
        .http()
        .post(
            "/api/v1/auth/register",
            json!({"username": "pw8", "password": "12345678", "is_admin": true}),
        )
        .await;
    assert_eq!(r.status, 200, "password of exactly 8: {}", text(&r));
    assert_eq!(r.body["user"]["is_admin"], false);
    assert_eq!(all_messages(&alice, &general).await.len(), 3);
}

// Rate limits ----------------------------------------------------------------------------

#[tokio::test]
async fn sends_are_rate_limited_after_a_burst_of_10_over_rest() {
    let server = Server::start().await; // default limits
    let (_root, alice, bob) = trio(&server).await;
    let general = alice.general().await;
    let mut oks = 0;
    let mut limited = None;
    for i in 0..20 {
        let r = send_raw(
            &alice,
            &general,
            json!({"body": format!("rapid {i}"), "client_id": format!("r{i}")}),
        )
        .await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        ok(&r, &format!("send #{i}"));
        oks += 1;
    }
    let r = limited.expect("20 rapid sends were never rate limited");
    assert!(
        oks >= 10,
        "the burst of 10 was not honoured: limited after {oks}"
    );
    rate_limited(&r, "send past the burst");
    assert_eq!(
        all_messages(&alice, &general).await.len(),
        oks,
        "a rate-limited send was stored"
    );
    // Other users are unaffected.
    send(&bob, &general, "bob is fine").await;
}

#[tokio::test]
async fn sends_are_rate_limited_over_the_gateway_too() {
    let server = Server::start().await;
    let (_root, alice, _) = trio(&server).await;
    let general = alice.general().await;
    let mut ws = alice.connect().await;
    let mut oks = 0;
    let mut limited = None;
    for i in 0..20 {
        let (r, _) = call(
            &mut ws,
            ws_send_frame(&general, &format!("gateway rapid {i}")),
        )
        .await;
        if r["ok"] == false {
            limited = Some(r);
            break;
        }
        oks += 1;
    }
    let r = limited.expect("20 rapid gateway sends were never rate limited");
    assert!(
        oks >= 10,
        "the burst of 10 was not honoured: limited after {oks}"
    );
    reply_err(&r, "rate_limited", "gateway send past the burst");
    // The connection stays open (one rate-limited frame is not abuse).
    barrier(&mut ws).await;
    // REST shares the same per-user budget.
    let r = send_raw(
        &alice,
        &general,
        json!({"body": "rest too", "client_id": "rt"}),
    )
    .await;
    rate_limited(&r, "REST send after the gateway burst");
    assert_eq!(all_messages(&alice, &general).await.len(), oks);
}

#[tokio::test]
async fn other_writes_are_rate_limited_after_a_burst_of_30() {
    let server = Server::start().await;
    let (_root, alice, _) = trio(&server).await;
    let general = alice.general().await;
    let m = send(&alice, &general, "edit me a lot").await;
    let path = format!("/api/v1/messages/{}", s(&m["id"]));
    let mut oks = 0;
    let mut limited = None;
    for i in 0..50 {
        let r = alice
            .patch(&path, json!({"body": format!("edit {i}")}))
            .await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        ok(&r, &format!("edit #{i}"));
        oks += 1;
    }
    let r = limited.expect("50 rapid edits were never rate limited");
    assert!(
        oks >= 30,
        "the write burst of 30 was not honoured: limited after {oks}"
    );
    rate_limited(&r, "edit past the burst");
    let body = &all_messages(&alice, &general).await[0]["body"];
    assert_eq!(
        body,
        &json!(format!("edit {}", oks - 1)),
        "the rate-limited edit was applied"
    );
}

#[tokio::test]
async fn no_rate_limit_lifts_every_limit() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let general = alice.general().await;
    for i in 0..40 {
        send(&alice, &general, &format!("unlimited {i}")).await;
    }
    let mut ws = alice.connect().await;
    for i in 0..15 {
        ws.send_message(&general, &format!("gateway unlimited {i}"))
            .await;
    }
    let m = send(&alice, &general, "edit target").await;
    for i in 0..40 {
        let r = alice
            .patch(
                &format!("/api/v1/messages/{}", s(&m["id"])),
                json!({"body": format!("e{i}")}),
            )
            .await;
        ok(&r, &format!("edit {i} without limits"));
    }
    for i in 0..12 {
        let r = login(&server, "alice", &format!("wrong {i}")).await;
        err(&r, "unauthorized", "failed login without limits");
    }
    let r = login(&server, "alice", PW).await;
    assert_eq!(
        r.status,
        200,
        "login after 12 failures with --no-rate-limit: {}",
        text(&r)
    );
    for i in 0..65 {
        let r = server
            .http()
            .post("/api/v1/auth/guest", json!({"name": format!("guest{i}")}))
            .await;
        assert_eq!(r.status, 200, "guest #{i} without limits: {}", text(&r));
    }
}

#[tokio::test]
async fn guest_sign_ups_are_limited_to_60_per_minute_per_ip() {
    let server = Server::start().await;
    let anon = server.http();
    let mut oks = 0;
    let mut limited = None;
    for i in 0..90 {
        let r = anon
            .post("/api/v1/auth/guest", json!({"name": format!("visitor{i}")}))
            .await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "guest #{i}: {}", text(&r));
        oks += 1;
    }
    let r = limited.expect("90 rapid guest sign-ups were never rate limited");
    assert!(
        oks >= 60,
        "60 guest sign-ups per minute should be allowed; limited after {oks}"
    );
    rate_limited(&r, "guest sign-up past the limit");
    assert!(r.body["token"].is_null());
}

#[tokio::test]
async fn guest_sign_up_limit_is_configurable() {
    let server = Server::start_with(&["--guest-signups-per-min", "3"]).await;
    let anon = server.http();
    for i in 0..3 {
        let r = anon
            .post("/api/v1/auth/guest", json!({"name": format!("few{i}")}))
            .await;
        assert_eq!(r.status, 200, "guest #{i}: {}", text(&r));
    }
    let r = anon
        .post("/api/v1/auth/guest", json!({"name": "few3"}))
        .await;
    rate_limited(&r, "4th guest with --guest-signups-per-min 3");
}

#[tokio::test]
async fn message_limit_is_configurable() {
    let server = fast_with(&["--max-message-chars", "10"]).await;
    let (_root, alice, _) = trio(&server).await;
    let general = alice.general().await;
    send(&alice, &general, "0123456789").await;
    let r = send_raw(&alice, &general, json!({"body": "0123456789a"})).await;
    invalid(&r, Some("body"), "11 chars with --max-message-chars 10");
}

#[tokio::test]
async fn search_accepts_any_query_text() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let general = alice.general().await;
    send(&alice, &general, "the quick brown fox").await;
    let secret = new_room(&bob, "bob-private", json!({"kind": "private"})).await;
    send(&bob, &secret, "the quick secret fox").await;
    for q in [
        "fox",
        "\"",
        "\"unbalanced",
        "*",
        "fox*",
        "AND",
        "OR NOT",
        "a AND OR b",
        "'; DROP TABLE messages; --",
        "NEAR(fox quick)",
        "(",
        ")",
        "^",
        "-fox",
        "fox:",
        "\\",
        "%",
        "_",
        "😀",
        "   ",
        "",
    ] {
        let r = alice
            .send(
                alice
                    .request(Method::GET, "/api/v1/search")
                    .query(&[("q", q)]),
            )
            .await;
        assert!(
            r.status < 500,
            "search {q:?} answered {}: {}",
            r.status,
            text(&r)
        );
        if r.status == 200 {
            for hit in r.body["results"].as_array().expect("results") {
                assert_ne!(
                    hit["message"]["room_id"],
                    secret.as_str(),
                    "search leaked a private room"
                );
            }
        }
    }
    let r = alice
        .send(
            alice
                .request(Method::GET, "/api/v1/search")
                .query(&[("q", "fox")]),
        )
        .await;
    ok(&r, "search fox");
    let hits = r.body["results"].as_array().unwrap();
    assert_eq!(
        hits.len(),
        1,
        "alice finds her message and not bob's private one: {}",
        r.body
    );
    assert!(
        s(&hits[0]["snippet"]).contains("<mark>"),
        "snippet marks the match: {}",
        hits[0]
    );
}
