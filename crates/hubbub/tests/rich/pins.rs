//! SPEC §6 pins, §7 `PUT/DELETE /messages/{id}/pin`, `GET /rooms/{id}/pins`.

use serde_json::{Value, json};

use crate::support::*;

async fn pin(api: &Api, id: &str) -> Resp {
    api.put(&format!("/api/v1/messages/{id}/pin"), json!({}))
        .await
}

async fn unpin(api: &Api, id: &str) -> Resp {
    api.delete(&format!("/api/v1/messages/{id}/pin")).await
}

async fn pins(api: &Api, room: &str) -> Vec<Value> {
    let r = api.get(&format!("/api/v1/rooms/{room}/pins")).await;
    ok(&r, "GET pins");
    r.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages: {}", text(&r)))
        .clone()
}

both!(moderators_pin_and_unpin, |env| {
    let (root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "pins", json!({})).await;
    join_ok(&bob, &room).await;
    join_ok(&root, &room).await;
    let m1 = send(&bob, &room, "pin me").await;
    let m2 = send(&bob, &room, "and me").await;
    let id1 = s(&m1["id"]);
    let id2 = s(&m2["id"]);
    let mut bws = bob.connect().await;
    assert!(pins(&bob, &room).await.is_empty());

    // The owner pins: the answer, the live event and the pin list agree.
    let r = pin(&alice, &id1).await;
    ok(&r, "owner pins");
    assert_eq!(r.body["id"], id1.as_str());
    assert_eq!(r.body["pinned"], true);
    let pinned_pos = int(&r.body["pos"]);
    assert!(pinned_pos > int(&m2["pos"]), "a pin takes a new pos");
    let (_, ev) = until(&mut bws, |v| touches(v, &id1)).await;
    assert_eq!(ev["type"], "message_updated", "{ev}");
    assert_eq!(ev["message"]["pinned"], true);
    assert_eq!(int(&ev["pos"]), pinned_pos);
    assert!(ev.get("reaction_change").is_none_or(Value::is_null), "{ev}");
    assert_eq!(ids(&pins(&bob, &room).await), vec![id1.clone()]);
    assert_eq!(message(&bob, &id1).await["pinned"], true);

    // Pinning again changes nothing.
    let r = pin(&alice, &id1).await;
    ok(&r, "pin twice");
    assert_eq!(r.body["pinned"], true);
    assert_eq!(
        int(&r.body["pos"]),
        pinned_pos,
        "a repeated pin takes no pos"
    );

    // A server admin (a plain member of the room) may pin too.
    let r = pin(&root, &id2).await;
    ok(&r, "server admin pins");
    assert_eq!(r.body["pinned"], true);
    // The next change bob sees is that pin (the repeated pin sent nothing).
    let (_, ev) = until(&mut bws, |v| v["type"] == "message_updated").await;
    assert_eq!(ev["message"]["id"], id2.as_str(), "{ev}");
    assert_eq!(
        sorted(ids(&pins(&bob, &room).await)),
        sorted(vec![id1.clone(), id2.clone()])
    );

    // Unpin.
    let r = unpin(&alice, &id1).await;
    ok(&r, "owner unpins");
    assert_eq!(r.body["pinned"], false);
    assert!(int(&r.body["pos"]) > pinned_pos);
    let (_, ev) = until(&mut bws, |v| touches(v, &id1)).await;
    assert_eq!(ev["message"]["pinned"], false, "{ev}");
    assert_eq!(ids(&pins(&bob, &room).await), vec![id2.clone()]);
    let r = unpin(&alice, &id1).await;
    ok(&r, "unpin twice");
    assert_eq!(r.body["pinned"], false);

    // A deleted pinned message leaves the pin list.
    let r = alice.delete(&format!("/api/v1/messages/{id2}")).await;
    ok(&r, "delete a pinned message");
    assert!(
        pins(&bob, &room).await.is_empty(),
        "deleted messages are not pinned"
    );
    let r = pin(&alice, &id2).await;
    err(&r, "not_found", "pinning a deleted message");
});

both!(pinning_needs_a_moderator_and_pins_need_read_access, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let guest = env.guest("visitor").await;
    let room = new_room(&alice, "pins", json!({"guests_allowed": false})).await;
    join_ok(&bob, &room).await;
    let m = send(&bob, &room, "my own message").await;
    let id = s(&m["id"]);
    let pinned = send(&alice, &room, "rules").await;
    let pid = s(&pinned["id"]);
    let r = pin(&alice, &pid).await;
    ok(&r, "owner pins");
    let pinned_pos = r.body["pos"].clone();
    let mut aws = alice.connect().await;

    // A plain member cannot pin (not even their own message) nor unpin.
    let r = pin(&bob, &id).await;
    err(&r, "forbidden", "member pinning");
    let r = unpin(&bob, &pid).await;
    err(&r, "forbidden", "member unpinning");
    // A non-member of the public room neither.
    let r = pin(&carol, &id).await;
    err(&r, "forbidden", "non-member pinning");
    // Unknown messages.
    let r = pin(&alice, "nope").await;
    err(&r, "not_found", "pinning an unknown message");

    // Nothing changed.
    let now = message(&alice, &id).await;
    assert_eq!(now["pinned"], false);
    assert_eq!(now["pos"], m["pos"]);
    let now = message(&alice, &pid).await;
    assert_eq!(now["pinned"], true);
    assert_eq!(now["pos"], pinned_pos);
    assert_eq!(ids(&pins(&bob, &room).await), vec![pid.clone()]);
    let marker = send(&alice, &room, "marker").await;
    let (before, _) = until(&mut aws, |v| is_msg_id(v, &s(&marker["id"]))).await;
    assert!(
        !before.iter().any(|v| v["type"] == "message_updated"),
        "refused pins produced events: {}",
        short(&before)
    );

    // Who may read the room may read its pins; others may not.
    let r = carol.get(&format!("/api/v1/rooms/{room}/pins")).await;
    ok(&r, "account non-member reads the pins of a public room");
    let r = guest.get(&format!("/api/v1/rooms/{room}/pins")).await;
    err(
        &r,
        "forbidden",
        "guest reading pins of a room without guests",
    );
    let private = new_room(&alice, "secret", json!({"kind": "private"})).await;
    let sm = send(&alice, &private, "secret plan").await;
    let r = pin(&alice, &s(&sm["id"])).await;
    ok(&r, "pin in private room");
    let r = carol.get(&format!("/api/v1/rooms/{private}/pins")).await;
    err(&r, "not_found", "outsider reading pins of a private room");
    assert!(!text(&r).contains("secret plan"));
    let r = pin(&carol, &s(&sm["id"])).await;
    err(&r, "not_found", "outsider pinning in a private room");
    let r = unpin(&carol, &s(&sm["id"])).await;
    err(&r, "not_found", "outsider unpinning in a private room");
    let r = carol.get("/api/v1/rooms/nope/pins").await;
    err(&r, "not_found", "pins of an unknown room");
    assert_eq!(message(&alice, &s(&sm["id"])).await["pinned"], true);
});
