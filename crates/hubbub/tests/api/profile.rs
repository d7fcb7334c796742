//! SPEC §3/§7: own profile, limits, user lookup and search, `user_updated`.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn get_me_returns_the_public_user_object() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let m = me(&alice).await;
    assert_eq!(m["id"], alice.user["id"]);
    assert_eq!(m["username"], "alice");
    assert_eq!(m["kind"], "user");
    assert_eq!(m["bio"], "");
    assert_eq!(m["status_text"], "");
    let url = s(&m["avatar_url"]);
    assert!(
        url.starts_with(&format!("/api/v1/avatars/{}", alice.id())),
        "avatar_url {url} should point at /api/v1/avatars/<id>"
    );
}

#[tokio::test]
async fn patch_me_updates_profile_everywhere() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let bob = server.register("bob", PW).await;
    let r = alice
        .patch(
            "/api/v1/me",
            json!({"display_name": "Alice Liddell", "bio": "Down the rabbit hole", "status_text": "in wonderland"}),
        )
        .await;
    ok(&r, "PATCH /me");
    let m = me(&alice).await;
    assert_eq!(m["display_name"], "Alice Liddell");
    assert_eq!(m["bio"], "Down the rabbit hole");
    assert_eq!(m["status_text"], "in wonderland");
    assert_eq!(m["username"], "alice", "username unchanged");

    // Partial update leaves the other fields alone.
    let r = alice
        .patch("/api/v1/me", json!({"status_text": "back"}))
        .await;
    ok(&r, "partial PATCH /me");
    let m = me(&alice).await;
    assert_eq!(m["display_name"], "Alice Liddell");
    assert_eq!(m["bio"], "Down the rabbit hole");
    assert_eq!(m["status_text"], "back");

    // Others see it.
    let r = bob.get(&format!("/api/v1/users/{}", alice.id())).await;
    ok(&r, "GET /users/{id}");
    assert_eq!(r.body["display_name"], "Alice Liddell");
    assert_eq!(r.body["status_text"], "back");
}

#[tokio::test]
async fn profile_length_limits() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    // Limits are in characters, not bytes: 'é' is one code point, two bytes.
    let cases = [
        ("display_name", 64usize),
        ("bio", 500),
        ("status_text", 100),
    ];
    for (field, max) in cases {
        let at_limit = "é".repeat(max);
        let r = alice.patch("/api/v1/me", json!({ field: at_limit })).await;
        ok(&r, &format!("{field} of {max} chars"));
        assert_eq!(me(&alice).await[field], at_limit.as_str());

        let before = me(&alice).await;
        let over = "é".repeat(max + 1);
        let r = alice.patch("/api/v1/me", json!({ field: over })).await;
        invalid(&r, Some(field), &format!("{field} of {} chars", max + 1));
        assert_eq!(
            me(&alice).await,
            before,
            "profile changed by a refused PATCH"
        );
    }
}

#[tokio::test]
async fn unknown_user_is_not_found() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let r = alice.get("/api/v1/users/does-not-exist").await;
    err(&r, "not_found", "GET unknown user");
}

#[tokio::test]
async fn user_search_finds_by_name_prefix() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    server.register("alicia", PW).await;
    server.register("bob", PW).await;
    let r = alice.get("/api/v1/users?q=ali").await;
    ok(&r, "GET /users?q=");
    let names: Vec<String> = r.body["users"]
        .as_array()
        .expect("users array")
        .iter()
        .map(|u| s(&u["username"]))
        .collect();
    assert!(
        names.contains(&"alice".to_string()),
        "alice not found: {names:?}"
    );
    assert!(
        names.contains(&"alicia".to_string()),
        "alicia not found: {names:?}"
    );
    assert!(
        !names.contains(&"bob".to_string()),
        "bob should not match 'ali': {names:?}"
    );

    let r = alice.get("/api/v1/users?q=BOB").await;
    ok(&r, "case-insensitive search");
    let names: Vec<String> = r.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| s(&u["username"]))
        .collect();
    assert_eq!(
        names,
        vec!["bob".to_string()],
        "search should be case-insensitive"
    );
}

#[tokio::test]
async fn user_updated_reaches_room_mates() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let bob = server.register("bob", PW).await;
    let mut bws = bob.connect().await;
    let r = alice
        .patch("/api/v1/me", json!({"display_name": "Queen Alice"}))
        .await;
    ok(&r, "PATCH /me");
    let aid = alice.id();
    let (_, ev) = until(&mut bws, |v| {
        v["type"] == "user_updated" && v["user"]["id"] == aid.as_str()
    })
    .await;
    assert_eq!(ev["user"]["display_name"], "Queen Alice");
    assert_eq!(ev["user"]["username"], "alice");
}
