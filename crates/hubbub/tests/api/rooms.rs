//! SPEC §5: rooms — kinds, passwords, time boxes, member limits, roles, membership.

use serde_json::{Value, json};

use crate::support::*;

const ROOM_FIELDS: [&str; 14] = [
    "id",
    "name",
    "topic",
    "kind",
    "has_password",
    "guests_allowed",
    "starts_at",
    "ends_at",
    "member_limit",
    "created_by",
    "created_at",
    "member_count",
    "last_seq",
    "pos",
];

fn is_rfc3339_utc(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() >= 20
            && s.as_bytes()[4] == b'-'
            && s.as_bytes()[10] == b'T'
            && (s.ends_with('Z') || s.ends_with("+00:00"))
    })
}

#[tokio::test]
async fn create_public_room_and_others_see_and_join_it() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = alice
        .create_room(json!({"name": "Lobby", "topic": "say hi"}))
        .await;
    for k in ROOM_FIELDS {
        assert!(room.get(k).is_some(), "room object lacks {k}: {room}");
    }
    assert_eq!(room["name"], "Lobby");
    assert_eq!(room["topic"], "say hi");
    assert_eq!(room["kind"], "public", "kind defaults to public");
    assert_eq!(room["has_password"], false);
    assert_eq!(room["member_count"], 1, "the creator is a member");
    assert_eq!(room["last_seq"], 0);
    assert_eq!(room["created_by"], alice.user["id"]);
    assert!(
        is_rfc3339_utc(&room["created_at"]),
        "created_at {} is not RFC 3339 UTC",
        room["created_at"]
    );
    assert!(
        room["starts_at"].is_null() && room["ends_at"].is_null() && room["member_limit"].is_null()
    );
    let id = s(&room["id"]);

    let mine = room_entry(&alice, &id)
        .await
        .expect("room in creator's list");
    assert_eq!(mine["role"], "owner", "the creator owns the room");
    for k in ["unread_count", "mention_count", "last_read_seq", "role"] {
        assert!(mine.get(k).is_some(), "joined room entry lacks {k}: {mine}");
    }

    assert!(
        room_entry(&bob, &id).await.is_some(),
        "public room listed to others"
    );
    let r = bob.get(&format!("/api/v1/rooms/{id}")).await;
    ok(&r, "GET public room as non-member");
    assert_eq!(r.body["name"], "Lobby");
    let r = join(&bob, &id).await;
    ok(&r, "join public room");
    assert_eq!(r.body["id"], id.as_str(), "join answers the room");
    let e = room_entry(&bob, &id).await.unwrap();
    assert_eq!(e["role"], "member");
    assert_eq!(e["member_count"], 2);
}

#[tokio::test]
async fn guests_cannot_create_rooms() {
    let server = fast().await;
    server.register("root", PW).await;
    let guest = server.guest("visitor").await;
    let before = rooms(&guest).await.len();
    let r = guest
        .post("/api/v1/rooms", json!({"name": "guest room"}))
        .await;
    err(&r, "forbidden", "guest creating a room");
    assert_eq!(rooms(&guest).await.len(), before);
}

#[tokio::test]
async fn private_rooms_are_invisible_to_outsiders_until_invited() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let id = new_room(&alice, "secret", json!({"kind": "private"})).await;
    send(&alice, &id, "hidden words").await;

    assert!(
        room_entry(&bob, &id).await.is_none(),
        "private room listed to an outsider"
    );
    for (what, r) in [
        ("GET room", bob.get(&format!("/api/v1/rooms/{id}")).await),
        (
            "GET messages",
            bob.get(&format!("/api/v1/rooms/{id}/messages")).await,
        ),
        (
            "GET members",
            bob.get(&format!("/api/v1/rooms/{id}/members")).await,
        ),
        ("join", join(&bob, &id).await),
        (
            "send",
            send_raw(&bob, &id, json!({"body": "let me in"})).await,
        ),
    ] {
        err(
            &r,
            "not_found",
            &format!("outsider {what} on a private room"),
        );
    }
    assert_eq!(all_messages(&alice, &id).await.len(), 1);

    let r = alice
        .post(
            &format!("/api/v1/rooms/{id}/invites"),
            json!({"user_id": bob.id()}),
        )
        .await;
    ok(&r, "invite");
    let e = room_entry(&bob, &id)
        .await
        .expect("invited member sees the private room");
    assert_eq!(e["kind"], "private");
    assert!(member_ids(&members(&alice, &id).await).contains(&bob.id()));
    send(&bob, &id, "thanks for the invite").await;
    assert_eq!(all_messages(&bob, &id).await.len(), 2);
}

#[tokio::test]
async fn outsiders_cannot_invite_into_private_rooms() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let carol = server.register("carol", PW).await;
    let id = new_room(&alice, "secret", json!({"kind": "private"})).await;
    let r = bob
        .post(
            &format!("/api/v1/rooms/{id}/invites"),
            json!({"user_id": carol.id()}),
        )
        .await;
    err(&r, "not_found", "outsider invite");
    assert!(room_entry(&carol, &id).await.is_none());
}

#[tokio::test]
async fn password_rooms_require_the_password() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = alice
        .create_room(json!({"name": "vault", "password": "open sesame"}))
        .await;
    assert_eq!(room["has_password"], true);
    assert!(
        !room.to_string().contains("open sesame"),
        "password returned: {room}"
    );
    let id = s(&room["id"]);
    let r = bob.get(&format!("/api/v1/rooms/{id}")).await;
    assert!(!String::from_utf8_lossy(&r.bytes).contains("open sesame"));

    let r = bob
        .post(&format!("/api/v1/rooms/{id}/join"), json!({}))
        .await;
    err(&r, "forbidden", "join without password");
    let r = bob
        .post(
            &format!("/api/v1/rooms/{id}/join"),
            json!({"password": "open says me"}),
        )
        .await;
    err(&r, "forbidden", "join with the wrong password");
    assert!(
        !member_ids(&members(&alice, &id).await).contains(&bob.id()),
        "refused joiner became a member"
    );
    assert_eq!(room_entry(&alice, &id).await.unwrap()["member_count"], 1);

    let r = bob
        .post(
            &format!("/api/v1/rooms/{id}/join"),
            json!({"password": "open sesame"}),
        )
        .await;
    ok(&r, "join with the right password");
    assert!(member_ids(&members(&alice, &id).await).contains(&bob.id()));
}

#[tokio::test]
async fn member_limit_counts_the_creator_and_refuses_when_full() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let carol = server.register("carol", PW).await;
    let id = new_room(&alice, "pair", json!({"member_limit": 2})).await;
    join_ok(&bob, &id).await;
    let r = join(&carol, &id).await;
    err(&r, "room_full", "third member in a room limited to 2");
    assert_eq!(room_entry(&alice, &id).await.unwrap()["member_count"], 2);
    // Joining again as an existing member is still fine when full.
    ok(&join(&bob, &id).await, "re-join of a member in a full room");
    // Someone leaves: there is space again.
    ok(
        &bob.post(&format!("/api/v1/rooms/{id}/leave"), json!({}))
            .await,
        "leave",
    );
    join_ok(&carol, &id).await;

    let solo = new_room(&alice, "solo", json!({"member_limit": 1})).await;
    err(
        &join(&bob, &solo).await,
        "room_full",
        "join a room limited to its creator",
    );
}

#[tokio::test]
async fn room_not_open_before_starts_at_but_owner_may_post() {
    let server = fast().await;
    let (root, alice, bob) = trio(&server).await;
    let starts = rfc3339_from_now(3600);
    let room = alice
        .create_room(json!({"name": "workshop", "starts_at": starts}))
        .await;
    assert!(
        is_rfc3339_utc(&room["starts_at"]),
        "starts_at {} not RFC 3339",
        room["starts_at"]
    );
    let id = s(&room["id"]);
    join_ok(&bob, &id).await;
    join_ok(&root, &id).await; // joining before the start is fine

    let welcome = send(&alice, &id, "Welcome! We start in an hour.").await;
    assert_eq!(welcome["seq"], 1);
    send(&root, &id, "admins may post too").await;
    let r = send_raw(&bob, &id, json!({"body": "early bird", "client_id": "eb"})).await;
    err(&r, "room_not_open", "member posting before starts_at");
    let mut ws = bob.connect().await;
    let (reply, _) = call(&mut ws, ws_send_frame(&id, "early bird via gateway")).await;
    reply_err(&reply, "room_not_open", "gateway send before starts_at");
    // Members may read.
    let msgs = all_messages(&bob, &id).await;
    assert_eq!(
        seqs(&msgs),
        vec![1, 2],
        "members read the room before it opens"
    );
}

#[tokio::test]
async fn room_closed_after_ends_at_but_owner_may_post() {
    let server = fast().await;
    let (root, alice, bob) = trio(&server).await;
    let end = unix_now_secs() + 2;
    let id = new_room(&alice, "sprint", json!({"ends_at": rfc3339(end)})).await;
    join_ok(&bob, &id).await;
    join_ok(&root, &id).await;
    // Wait for the wall clock (not the server) to pass ends_at.
    let wait_ms = ((end as i128 * 1000)
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i128
        + 300)
        .max(0) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;

    let r = send_raw(&bob, &id, json!({"body": "too late", "client_id": "tl"})).await;
    err(&r, "room_closed", "member posting after ends_at");
    let mut ws = bob.connect().await;
    let (reply, _) = call(&mut ws, ws_send_frame(&id, "too late via gateway")).await;
    reply_err(&reply, "room_closed", "gateway send after ends_at");
    send(&alice, &id, "Thanks everyone, the room is closed.").await;
    send(&root, &id, "admin note").await;
    let msgs = all_messages(&bob, &id).await;
    assert_eq!(
        msgs.len(),
        2,
        "only the owner's and the admin's notes were stored"
    );
}

#[tokio::test]
async fn guests_only_reach_rooms_that_allow_guests() {
    let server = fast().await;
    let (_root, alice, _bob) = trio(&server).await;
    let guest = server.guest("visitor").await;
    let closed = new_room(&alice, "members only", json!({"guests_allowed": false})).await;
    let open = new_room(&alice, "everyone", json!({"guests_allowed": true})).await;
    let r = join(&guest, &closed).await;
    err(
        &r,
        "forbidden",
        "guest joining a room without guests_allowed",
    );
    assert!(!member_ids(&members(&alice, &closed).await).contains(&guest.id()));
    let r = send_raw(&guest, &closed, json!({"body": "hi"})).await;
    err(
        &r,
        "forbidden",
        "guest posting in a room without guests_allowed",
    );
    join_ok(&guest, &open).await;
    send(&guest, &open, "hello from a guest").await;
}

#[tokio::test]
async fn joining_twice_changes_nothing() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let id = new_room(&alice, "twice", json!({})).await;
    join_ok(&bob, &id).await;
    let before_members = members(&alice, &id).await;
    join_ok(&bob, &id).await;
    join_ok(&alice, &id).await; // the owner joining her own room keeps her role
    let after = members(&alice, &id).await;
    assert_eq!(after.len(), 2, "duplicate membership: {after:?}");
    assert_eq!(member_ids(&after), member_ids(&before_members));
    assert_eq!(room_entry(&alice, &id).await.unwrap()["role"], "owner");
    assert_eq!(room_entry(&bob, &id).await.unwrap()["role"], "member");
    assert_eq!(room_entry(&bob, &id).await.unwrap()["member_count"], 2);
}

#[tokio::test]
async fn leave_room_removes_membership_and_tells_members() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let id = new_room(&alice, "leaving", json!({})).await;
    join_ok(&bob, &id).await;
    let mut aws = alice.connect().await;
    let r = bob
        .post(&format!("/api/v1/rooms/{id}/leave"), json!({}))
        .await;
    ok(&r, "leave");
    let bid = bob.id();
    let (_, ev) = until(&mut aws, |v| {
        v["type"] == "member_left" && v["room_id"] == id.as_str()
    })
    .await;
    assert_eq!(ev["user"]["id"], bid.as_str());
    assert!(!member_ids(&members(&alice, &id).await).contains(&bid));
    assert_eq!(room_entry(&alice, &id).await.unwrap()["member_count"], 1);
    let e = room_entry(&bob, &id).await;
    assert!(
        e.is_none() || e.unwrap()["role"].is_null(),
        "bob still listed as member after leaving"
    );
    let r = send_raw(&bob, &id, json!({"body": "still here?"})).await;
    err(&r, "forbidden", "posting after leaving");
}

#[tokio::test]
async fn members_list_has_roles_presence_and_join_time() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let id = new_room(&alice, "team", json!({})).await;
    join_ok(&bob, &id).await;
    let _ws = bob.connect().await;
    let list = members(&alice, &id).await;
    assert_eq!(list.len(), 2);
    for m in &list {
        assert!(m["joined_at"].is_string(), "member without joined_at: {m}");
        assert!(
            m["user"]["status"].is_string(),
            "member user without status: {m}"
        );
        assert!(
            m["user"].get("last_seen_at").is_some(),
            "member user without last_seen_at: {m}"
        );
        let want = if m["user"]["id"] == alice.user["id"] {
            "owner"
        } else {
            "member"
        };
        assert_eq!(m["role"], want, "role of {}", m["user"]["username"]);
    }
    let b = list
        .iter()
        .find(|m| m["user"]["id"] == bob.user["id"])
        .unwrap();
    assert_eq!(b["user"]["status"], "online", "bob has an open connection");
    assert!(b["user"]["last_seen_at"].is_null());
}

#[tokio::test]
async fn member_joined_reaches_existing_members() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let id = new_room(&alice, "welcome", json!({})).await;
    let mut aws = alice.connect().await;
    join_ok(&bob, &id).await;
    let bid = bob.id();
    let (_, ev) = until(&mut aws, |v| {
        v["type"] == "member_joined" && v["room_id"] == id.as_str()
    })
    .await;
    assert_eq!(ev["user"]["id"], bid.as_str());
}

#[tokio::test]
async fn only_owner_admins_and_server_admins_may_update_a_room() {
    let server = fast().await;
    let (root, alice, bob) = trio(&server).await;
    let id = new_room(&alice, "editable", json!({"topic": "original"})).await;
    join_ok(&bob, &id).await;
    let mut bws = bob.connect().await;

    let r = bob
        .patch(&format!("/api/v1/rooms/{id}"), json!({"topic": "hijacked"}))
        .await;
    err(&r, "forbidden", "member PATCH room");
    assert_eq!(
        bob.get(&format!("/api/v1/rooms/{id}")).await.body["topic"],
        "original"
    );

    let r = alice
        .patch(
            &format!("/api/v1/rooms/{id}"),
            json!({"topic": "by the owner"}),
        )
        .await;
    ok(&r, "owner PATCH room");
    assert_eq!(
        bob.get(&format!("/api/v1/rooms/{id}")).await.body["topic"],
        "by the owner"
    );
    let (_, ev) = until(&mut bws, |v| {
        v["type"] == "room_updated" && v["room"]["id"] == id.as_str()
    })
    .await;
    assert_eq!(ev["room"]["topic"], "by the owner");

    // Server admins act as owners.
    let r = root
        .patch(
            &format!("/api/v1/rooms/{id}"),
            json!({"topic": "by the admin", "name": "renamed"}),
        )
        .await;
    ok(&r, "server admin PATCH room");
    let g = bob.get(&format!("/api/v1/rooms/{id}")).await;
    assert_eq!(g.body["topic"], "by the admin");
    assert_eq!(g.body["name"], "renamed");
}

#[tokio::test]
async fn only_the_owner_or_server_admin_deletes_a_room() {
    let server = fast().await;
    let (root, alice, bob) = trio(&server).await;
    let id = new_room(&alice, "doomed", json!({})).await;
    join_ok(&bob, &id).await;
    send(&bob, &id, "last words").await;
    let mut bws = bob.connect().await;

    let r = bob.delete(&format!("/api/v1/rooms/{id}")).await;
    err(&r, "forbidden", "member DELETE room");
    assert!(room_entry(&bob, &id).await.is_some());

    let r = alice.delete(&format!("/api/v1/rooms/{id}")).await;
    ok(&r, "owner DELETE room");
    let (_, ev) = until(&mut bws, |v| {
        v["type"] == "room_removed" && v["room_id"] == id.as_str()
    })
    .await;
    assert!(
        ev["reason"].is_string(),
        "room_removed without reason: {ev}"
    );
    err(
        &bob.get(&format!("/api/v1/rooms/{id}")).await,
        "not_found",
        "GET deleted room",
    );
    assert!(
        room_entry(&bob, &id).await.is_none(),
        "deleted room still listed"
    );

    let other = new_room(&alice, "admin-deletes", json!({})).await;
    ok(
        &root.delete(&format!("/api/v1/rooms/{other}")).await,
        "server admin DELETE room",
    );
    err(
        &alice.get(&format!("/api/v1/rooms/{other}")).await,
        "not_found",
        "GET room deleted by admin",
    );
}

#[tokio::test]
async fn unknown_room_ids_are_not_found() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    for (what, r) in [
        ("GET", alice.get("/api/v1/rooms/nope").await),
        ("join", join(&alice, "nope").await),
        ("messages", alice.get("/api/v1/rooms/nope/messages").await),
        ("send", send_raw(&alice, "nope", json!({"body": "x"})).await),
        ("members", alice.get("/api/v1/rooms/nope/members").await),
    ] {
        err(&r, "not_found", &format!("{what} on an unknown room"));
    }
}

#[tokio::test]
async fn dms_are_found_or_created_for_exactly_that_set_of_people() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let carol = server.register("carol", PW).await;
    let r = alice
        .post("/api/v1/dms", json!({"user_ids": [bob.id()]}))
        .await;
    ok(&r, "create DM");
    assert_eq!(r.body["kind"], "dm");
    let dm = s(&r.body["id"]);
    let again = alice
        .post("/api/v1/dms", json!({"user_ids": [bob.id()]}))
        .await;
    ok(&again, "find DM");
    assert_eq!(
        again.body["id"],
        dm.as_str(),
        "the same pair gets the same DM"
    );
    let theirs = bob
        .post("/api/v1/dms", json!({"user_ids": [alice.id()]}))
        .await;
    ok(&theirs, "find DM from the other side");
    assert_eq!(theirs.body["id"], dm.as_str());
    let group = alice
        .post("/api/v1/dms", json!({"user_ids": [bob.id(), carol.id()]}))
        .await;
    ok(&group, "group DM");
    assert_ne!(
        group.body["id"],
        dm.as_str(),
        "a different set of people is a different DM"
    );

    let mut ids = member_ids(&members(&alice, &dm).await);
    ids.sort();
    let mut want = vec![alice.id(), bob.id()];
    want.sort();
    assert_eq!(ids, want);
    send(&bob, &dm, "psst").await;
    for (what, r) in [
        ("GET", carol.get(&format!("/api/v1/rooms/{dm}")).await),
        (
            "messages",
            carol.get(&format!("/api/v1/rooms/{dm}/messages")).await,
        ),
        ("join", join(&carol, &dm).await),
    ] {
        err(&r, "not_found", &format!("outsider {what} on a DM"));
    }
    assert!(room_entry(&carol, &dm).await.is_none());

    let ten: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
    let r = alice.post("/api/v1/dms", json!({"user_ids": ten})).await;
    err(&r, "invalid", "DM with 10 others");
    let r = alice.post("/api/v1/dms", json!({"user_ids": []})).await;
    err(&r, "invalid", "DM with nobody");
}
