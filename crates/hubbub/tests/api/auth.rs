//! SPEC §3: accounts, guests, sessions, cookies, CSRF, login attempt limits.

use reqwest::Method;
use serde_json::json;

use crate::common::*;
use crate::support::*;

const USER_FIELDS: [&str; 8] = [
    "id",
    "username",
    "display_name",
    "kind",
    "avatar_url",
    "bio",
    "status_text",
    "is_admin",
];

#[tokio::test]
async fn register_answers_user_and_token_and_first_account_is_admin() {
    let server = fast().await;
    let anon = server.http();
    let r = anon
        .post(
            "/api/v1/auth/register",
            json!({"username": "alice", "password": PW, "display_name": "Alice A."}),
        )
        .await;
    assert_eq!(r.status, 200, "register: {}", text(&r));
    let user = &r.body["user"];
    for k in USER_FIELDS {
        assert!(user.get(k).is_some(), "user object lacks {k}: {user}");
    }
    assert_eq!(user["username"], "alice");
    assert_eq!(user["display_name"], "Alice A.");
    assert_eq!(user["kind"], "user");
    assert_eq!(
        user["is_admin"], true,
        "the first account is the server admin"
    );
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    assert!(
        !String::from_utf8_lossy(&r.bytes).contains(PW),
        "the password must never be returned"
    );
    let t1 = s(&r.body["token"]);
    assert!(t1.len() >= 22, "token too short for 128 bits: {t1}");

    let r2 = anon
        .post(
            "/api/v1/auth/register",
            json!({"username": "bob", "password": PW}),
        )
        .await;
    assert_eq!(r2.status, 200, "register bob: {}", text(&r2));
    assert_eq!(
        r2.body["user"]["is_admin"], false,
        "only the first account is admin"
    );
    assert_ne!(s(&r2.body["token"]), t1);

    let alice = server.api_with(&t1, user.clone());
    let m = me(&alice).await;
    assert_eq!(m["id"], user["id"]);
    assert_eq!(m["is_admin"], true);
}

#[tokio::test]
async fn login_issues_a_new_working_session() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let r = login(&server, "alice", PW).await;
    assert_eq!(r.status, 200, "login: {}", text(&r));
    assert_eq!(r.body["user"]["id"], alice.user["id"]);
    let t = s(&r.body["token"]);
    assert_ne!(t, alice.token(), "a login creates a new session");
    let api = server.api_with(&t, r.body["user"].clone());
    assert_eq!(me(&api).await["username"], "alice");
    // the first session still works too
    assert_eq!(me(&alice).await["username"], "alice");
}

#[tokio::test]
async fn login_username_is_case_insensitive() {
    let server = fast().await;
    let alice = server.register("Alice", PW).await;
    let r = login(&server, "aLiCe", PW).await;
    assert_eq!(r.status, 200, "login with other case: {}", text(&r));
    assert_eq!(r.body["user"]["id"], alice.user["id"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_both_unauthorized_and_indistinguishable() {
    let server = fast().await;
    server.register("alice", PW).await;
    let wrong = login(&server, "alice", "not-the-password").await;
    err(&wrong, "unauthorized", "wrong password");
    let unknown = login(&server, "nobody", PW).await;
    err(&unknown, "unauthorized", "unknown user");
    assert_eq!(
        wrong.body["error"]["message"], unknown.body["error"]["message"],
        "wrong password and unknown user must be indistinguishable"
    );
    assert!(wrong.body["token"].is_null() && unknown.body["token"].is_null());
}

#[tokio::test]
async fn username_rules_are_enforced() {
    let server = fast().await;
    let anon = server.http();
    let long32 = "a".repeat(32);
    for good in ["ab", long32.as_str(), "a_b.c-D9"] {
        let r = anon
            .post(
                "/api/v1/auth/register",
                json!({"username": good, "password": PW}),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "username {good:?} should be accepted: {}",
            text(&r)
        );
        assert_eq!(r.body["user"]["username"], good);
    }
    let long33 = "b".repeat(33);
    for bad in [
        "a",
        "",
        long33.as_str(),
        "has space",
        "sl/ash",
        "at@sign",
        "émile",
        "emoji😀",
        "tab\tx",
    ] {
        let r = anon
            .post(
                "/api/v1/auth/register",
                json!({"username": bad, "password": PW}),
            )
            .await;
        invalid(&r, Some("username"), &format!("username {bad:?}"));
    }
}

#[tokio::test]
async fn usernames_are_unique_case_insensitively() {
    let server = fast().await;
    server.register("Alice", PW).await;
    for other in ["alice", "ALICE", "Alice"] {
        let r = server
            .http()
            .post(
                "/api/v1/auth/register",
                json!({"username": other, "password": PW}),
            )
            .await;
        err(&r, "conflict", &format!("register {other}"));
    }
}

#[tokio::test]
async fn guest_session_basics_and_membership_of_general() {
    let server = fast().await;
    let anon = server.http();
    let r = anon
        .post("/api/v1/auth/guest", json!({"name": "wanderer"}))
        .await;
    assert_eq!(r.status, 200, "guest: {}", text(&r));
    let user = &r.body["user"];
    for k in USER_FIELDS {
        assert!(user.get(k).is_some(), "guest user object lacks {k}: {user}");
    }
    assert_eq!(user["kind"], "guest");
    assert_eq!(user["username"], "wanderer");
    assert_eq!(
        user["is_admin"], false,
        "a guest is never admin, even the first identity"
    );
    let guest = server.api_with(&s(&r.body["token"]), user.clone());
    assert_eq!(me(&guest).await["id"], user["id"]);
    let general = guest.general().await;
    let entry = room_entry(&guest, &general).await.unwrap();
    assert!(
        entry["role"].is_string(),
        "guest should be a member of General: {entry}"
    );
    let ids = member_ids(&members(&guest, &general).await);
    assert!(
        ids.contains(&s(&user["id"])),
        "guest missing from General members"
    );
}

#[tokio::test]
async fn new_accounts_are_members_of_general() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let bob = server.register("bob", PW).await;
    let general = bob.general().await;
    let g = room_entry(&bob, &general).await.unwrap();
    assert_eq!(g["kind"], "public");
    assert_eq!(g["guests_allowed"], true);
    assert!(
        g["role"].is_string(),
        "bob should be a member of General: {g}"
    );
    let ids = member_ids(&members(&bob, &general).await);
    assert!(ids.contains(&alice.id()) && ids.contains(&bob.id()));
}

#[tokio::test]
async fn guest_names_clash_with_accounts_and_active_guests() {
    let server = fast().await;
    server.register("carol", PW).await;
    let anon = server.http();
    let r = anon
        .post("/api/v1/auth/guest", json!({"name": "Carol"}))
        .await;
    err(&r, "conflict", "guest named like an account");

    let dave = server.guest("dave").await;
    let r = anon
        .post("/api/v1/auth/guest", json!({"name": "DAVE"}))
        .await;
    err(&r, "conflict", "guest named like an active guest");

    // Once the guest session ends, the name is free again.
    let r = dave.post("/api/v1/auth/logout", json!({})).await;
    ok(&r, "guest logout");
    let r = anon
        .post("/api/v1/auth/guest", json!({"name": "dave"}))
        .await;
    assert_eq!(r.status, 200, "name free after logout: {}", text(&r));

    let r = anon.post("/api/v1/auth/guest", json!({"name": "x"})).await;
    invalid(&r, Some("name"), "guest name too short");
    let r = anon
        .post("/api/v1/auth/guest", json!({"name": "two words"}))
        .await;
    invalid(&r, Some("name"), "guest name with space");
}

#[tokio::test]
async fn logout_revokes_the_token_everywhere() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let second = login(&server, "alice", PW).await;
    let other = server.api_with(&s(&second.body["token"]), second.body["user"].clone());

    let r = alice.post("/api/v1/auth/logout", json!({})).await;
    ok(&r, "logout");
    let r = alice.get("/api/v1/me").await;
    err(&r, "unauthorized", "GET /me after logout");
    let r = alice
        .post("/api/v1/rooms", json!({"name": "after-logout"}))
        .await;
    err(&r, "unauthorized", "create room after logout");
    let up = ws_try(&server, Some(alice.token()), &[]).await;
    assert_eq!(up.err(), Some(401), "gateway upgrade with a revoked token");

    // The other session of the same account is untouched.
    assert_eq!(me(&other).await["username"], "alice");
}

#[tokio::test]
async fn session_tokens_and_passwords_are_not_stored_in_plaintext() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let r = login(&server, "alice", PW).await;
    let t2 = s(&r.body["token"]);
    let guest = server.guest("visitor").await;
    // Make sure something was written after the sessions.
    let general = alice.general().await;
    send(&alice, &general, "flush").await;
    let files = all_bytes_under(&server.data_dir);
    assert!(!files.is_empty(), "data dir is empty");
    for (path, bytes) in &files {
        for (what, needle) in [
            ("session token", alice.token()),
            ("login token", t2.as_str()),
            ("guest token", guest.token()),
            ("password", PW),
        ] {
            assert!(
                !contains_bytes(bytes, needle.as_bytes()),
                "{what} found in plaintext in {}",
                path.display()
            );
        }
    }
}

fn session_cookie(r: &Resp) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("hubbub_session="))
        .unwrap_or_else(|| panic!("no hubbub_session cookie set; headers: {:?}", r.headers))
}

fn check_cookie(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", text(r));
    let c = session_cookie(r);
    let token = s(&r.body["token"]);
    let value = c.split(';').next().unwrap().trim();
    assert_eq!(
        value,
        format!("hubbub_session={token}"),
        "{what}: cookie carries the token"
    );
    let attrs: Vec<String> = c
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(
        attrs.iter().any(|a| a == "httponly"),
        "{what}: cookie not HttpOnly: {c}"
    );
    assert!(
        attrs.iter().any(|a| a == "samesite=lax"),
        "{what}: cookie not SameSite=Lax: {c}"
    );
}

#[tokio::test]
async fn register_login_and_guest_set_an_httponly_samesite_lax_cookie() {
    let server = fast().await;
    let anon = server.http();
    let r = anon
        .post(
            "/api/v1/auth/register",
            json!({"username": "alice", "password": PW}),
        )
        .await;
    check_cookie(&r, "register");
    let r = login(&server, "alice", PW).await;
    check_cookie(&r, "login");
    let r = anon
        .post("/api/v1/auth/guest", json!({"name": "guesty"}))
        .await;
    check_cookie(&r, "guest");
}

#[tokio::test]
async fn cookie_authenticates_requests() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let r = cookie_req(
        &server,
        Method::GET,
        "/api/v1/me",
        alice.token(),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "GET /me by cookie: {}", text(&r));
    assert_eq!(r.body["id"], alice.user["id"]);
    // Same-origin state change by cookie passes.
    let r = cookie_req(
        &server,
        Method::PATCH,
        "/api/v1/me",
        alice.token(),
        Some(&server.base),
        Some(json!({"status_text": "same origin"})),
    )
    .await;
    ok(&r, "same-origin PATCH by cookie");
    assert_eq!(me(&alice).await["status_text"], "same origin");
}

#[tokio::test]
async fn csrf_foreign_origin_with_cookie_is_refused_and_changes_nothing() {
    let server = fast().await;
    let _root = server.register("root", PW).await;
    let alice = server.register("alice", PW).await;
    let before_me = me(&alice).await;
    let before_rooms = rooms(&alice).await.len();

    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let r = cookie_req(
            &server,
            Method::PATCH,
            "/api/v1/me",
            alice.token(),
            Some(origin),
            Some(json!({"status_text": "pwned"})),
        )
        .await;
        err(
            &r,
            "forbidden",
            &format!("cookie PATCH /me from Origin {origin}"),
        );
        let r = cookie_req(
            &server,
            Method::POST,
            "/api/v1/rooms",
            alice.token(),
            Some(origin),
            Some(json!({"name": "csrf-room"})),
        )
        .await;
        err(
            &r,
            "forbidden",
            &format!("cookie POST /rooms from Origin {origin}"),
        );
    }
    let general = alice.general().await;
    let r = cookie_req(
        &server,
        Method::POST,
        &format!("/api/v1/rooms/{general}/messages"),
        alice.token(),
        Some("http://evil.example"),
        Some(json!({"body": "csrf message"})),
    )
    .await;
    err(&r, "forbidden", "cookie send from foreign origin");
    let r = cookie_req(
        &server,
        Method::POST,
        "/api/v1/auth/logout",
        alice.token(),
        Some("http://evil.example"),
        Some(json!({})),
    )
    .await;
    err(&r, "forbidden", "cookie logout from foreign origin");

    assert_eq!(
        me(&alice).await,
        before_me,
        "profile changed by a refused request"
    );
    assert_eq!(
        rooms(&alice).await.len(),
        before_rooms,
        "room created by a refused request"
    );
    assert!(
        all_messages(&alice, &general).await.is_empty(),
        "message stored by a refused request"
    );

    // No Origin at all (a non-browser client) passes with the cookie.
    let r = cookie_req(
        &server,
        Method::PATCH,
        "/api/v1/me",
        alice.token(),
        None,
        Some(json!({"status_text": "no origin"})),
    )
    .await;
    ok(&r, "cookie PATCH without Origin");
    assert_eq!(me(&alice).await["status_text"], "no origin");
}

#[tokio::test]
async fn bearer_requests_are_not_origin_checked() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let r = alice
        .send(
            alice
                .request(Method::PATCH, "/api/v1/me")
                .header("Origin", "http://evil.example")
                .json(&json!({"status_text": "bearer ok"})),
        )
        .await;
    ok(&r, "bearer PATCH with foreign Origin");
    assert_eq!(me(&alice).await["status_text"], "bearer ok");
}

#[tokio::test]
async fn ten_failed_logins_lock_the_account_even_for_the_right_password() {
    let server = Server::start().await; // default limits
    server.register("root", PW).await;
    server.register("victim", PW).await;
    server.register("bystander", PW).await;
    for i in 1..=10 {
        let r = login(&server, "victim", &format!("wrong-password-{i}")).await;
        err(&r, "unauthorized", &format!("failed login #{i}"));
    }
    let r = login(&server, "victim", "wrong-password-11").await;
    rate_limited(&r, "11th failed login");
    let r = login(&server, "victim", PW).await;
    rate_limited(&r, "right password after 10 failures");
    assert!(r.body["token"].is_null());
    // Other accounts are not locked by it.
    let r = login(&server, "bystander", PW).await;
    assert_eq!(r.status, 200, "another account logs in: {}", text(&r));
}

#[tokio::test]
async fn thirty_failed_logins_from_one_ip_are_rate_limited() {
    let server = Server::start().await; // default limits
    server.register("root", PW).await;
    server.register("fresh", PW).await;
    for i in 0..30 {
        let r = login(&server, &format!("ghost{i}"), "whatever-pw").await;
        err(
            &r,
            "unauthorized",
            &format!("failed login #{i} for an unknown user"),
        );
    }
    let r = login(&server, "fresh", PW).await;
    rate_limited(&r, "login after 30 failures from this IP");
}

#[tokio::test]
async fn closed_registration_refuses_sign_ups() {
    let server = Server::start_with(&["--no-rate-limit", "--registration", "closed"]).await;
    let r = server
        .http()
        .post(
            "/api/v1/auth/register",
            json!({"username": "alice", "password": PW}),
        )
        .await;
    err(&r, "forbidden", "register with registration closed");
    assert!(r.body["token"].is_null());
    // Guests are a separate switch.
    let r = server
        .http()
        .post("/api/v1/auth/guest", json!({"name": "g1"}))
        .await;
    assert_eq!(
        r.status,
        200,
        "guest with closed registration: {}",
        text(&r)
    );
}

#[tokio::test]
async fn no_guests_switch_refuses_guest_sessions() {
    let server = Server::start_with(&["--no-rate-limit", "--no-guests"]).await;
    let r = server
        .http()
        .post("/api/v1/auth/guest", json!({"name": "g1"}))
        .await;
    err(&r, "forbidden", "guest with --no-guests");
    assert!(r.body["token"].is_null());
    let r = server
        .http()
        .post(
            "/api/v1/auth/register",
            json!({"username": "alice", "password": PW}),
        )
        .await;
    assert_eq!(r.status, 200, "accounts still work: {}", text(&r));
}

#[tokio::test]
async fn requests_without_or_with_bad_credentials_are_unauthorized() {
    let server = fast().await;
    let anon = server.http();
    for path in ["/api/v1/me", "/api/v1/rooms"] {
        let r = anon.get(path).await;
        err(&r, "unauthorized", &format!("anonymous GET {path}"));
    }
    let r = anon
        .send(
            anon.request(Method::GET, "/api/v1/me")
                .bearer_auth("not-a-real-token"),
        )
        .await;
    err(&r, "unauthorized", "bogus bearer token");
    let r = cookie_req(&server, Method::GET, "/api/v1/me", "bogus", None, None).await;
    err(&r, "unauthorized", "bogus cookie");
}
