//! SPEC §8: the WebSocket gateway — every client op, replies, events, malformed
//! frames, abuse limits, authentication of the upgrade.

use serde_json::{Value, json};

use crate::common::*;
use crate::support::*;

/// root, alice, bob; a room owned by alice with bob in it; both connected.
async fn pair(server: &Server) -> (Api, Api, String, Ws, Ws) {
    let (_root, alice, bob) = trio(server).await;
    let room = new_room(&alice, "chat", json!({})).await;
    join_ok(&bob, &room).await;
    let aws = alice.connect().await;
    let bws = bob.connect().await;
    (alice, bob, room, aws, bws)
}

#[tokio::test]
async fn ready_frame_describes_user_rooms_and_users() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let general = alice.general().await;
    send(&bob, &general, "unread for alice").await;
    let not_joined = new_room(&bob, "bob's public room", json!({})).await;
    let ws = alice.connect().await;
    assert!(
        !ws.ready["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == not_joined.as_str()),
        "ready.rooms lists a room the caller is not a member of"
    );
    let ready = &ws.ready;
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["user"]["id"], alice.user["id"]);
    let g = ready_room(&ws, &general);
    for k in [
        "unread_count",
        "mention_count",
        "pos",
        "last_seq",
        "member_count",
    ] {
        assert!(g.get(k).is_some(), "ready room lacks {k}: {g}");
    }
    assert_eq!(g["unread_count"], 1);
    let users = ready["users"].as_array().expect("ready.users");
    let me_entry = users
        .iter()
        .find(|u| u["id"] == alice.user["id"])
        .expect("ready.users includes the caller");
    assert_eq!(me_entry["status"], "online");
    assert!(me_entry.get("last_seen_at").is_some_and(|v| v.is_null()));
    let b = users
        .iter()
        .find(|u| u["id"] == bob.user["id"])
        .expect("room-mate bob in ready.users");
    assert_eq!(b["status"], "offline", "bob has no connection");
    assert!(
        b.get("last_seen_at").is_some(),
        "users carry last_seen_at: {b}"
    );
}

#[tokio::test]
async fn send_op_replies_with_the_stored_message_and_fans_out() {
    let server = fast().await;
    let (alice, _bob, room, mut aws, mut bws) = pair(&server).await;
    let (reply, _) = call(
        &mut aws,
        json!({"type": "send", "room_id": room, "client_id": "op-send", "body": "hi *there*"}),
    )
    .await;
    reply_ok(&reply, "send");
    let m = &reply["data"];
    assert_eq!(m["seq"], 1);
    assert_eq!(m["body"], "hi *there*");
    assert_eq!(m["client_id"], "op-send");
    assert_eq!(m["author"]["id"], alice.user["id"]);
    let id = s(&m["id"]);
    let (_, ev) = until(&mut bws, |v| is_msg_id(v, &id)).await;
    assert_eq!(ev["message"]["seq"], 1);
    assert!(
        ev["pos"].as_i64().is_some(),
        "live message events carry pos: {ev}"
    );
    assert_eq!(ev["pos"], m["pos"]);
    // The sender's own connections get it too.
    let mut aws2 = alice.connect().await;
    let m2 = aws2.send_message(&room, "second").await;
    let id2 = s(&m2["id"]);
    until(&mut aws, |v| is_msg_id(v, &id2)).await;
    until(&mut aws2, |v| is_msg_id(v, &id2)).await;
}

#[tokio::test]
async fn edit_op_replies_with_the_message_and_broadcasts_message_updated() {
    let server = fast().await;
    let (_alice, _bob, room, mut aws, mut bws) = pair(&server).await;
    let m = aws.send_message(&room, "typo").await;
    let id = s(&m["id"]);
    let (reply, _) = call(
        &mut aws,
        json!({"type": "edit", "message_id": id, "body": "fixed"}),
    )
    .await;
    reply_ok(&reply, "edit");
    assert_eq!(reply["data"]["body"], "fixed");
    assert!(reply["data"]["edited_at"].is_string());
    let (_, ev) = until(&mut bws, |v| {
        v["type"] == "message_updated" && v["message"]["id"] == id.as_str()
    })
    .await;
    assert_eq!(ev["message"]["body"], "fixed");
    assert!(ev["pos"].as_i64().unwrap() > m["pos"].as_i64().unwrap());
    // bob may not edit it
    let (reply, _) = call(
        &mut bws,
        json!({"type": "edit", "message_id": id, "body": "mine now"}),
    )
    .await;
    reply_err(&reply, "forbidden", "edit someone else's message");
    let (reply, _) = call(
        &mut bws,
        json!({"type": "edit", "message_id": "nope", "body": "x"}),
    )
    .await;
    reply_err(&reply, "not_found", "edit unknown message");
}

#[tokio::test]
async fn delete_op_broadcasts_message_deleted() {
    let server = fast().await;
    let (_alice, _bob, room, mut aws, mut bws) = pair(&server).await;
    let m = aws.send_message(&room, "regret").await;
    let id = s(&m["id"]);
    let (reply, _) = call(&mut bws, json!({"type": "delete", "message_id": id})).await;
    reply_err(&reply, "forbidden", "member deleting another's message");
    let (reply, _) = call(&mut aws, json!({"type": "delete", "message_id": id})).await;
    reply_ok(&reply, "delete");
    assert!(reply["data"].is_null(), "delete replies data null: {reply}");
    let (_, ev) = until(&mut bws, |v| v["type"] == "message_deleted").await;
    assert_eq!(ev["room_id"], room.as_str());
    assert_eq!(ev["message_id"], id.as_str());
    assert_eq!(ev["seq"], m["seq"]);
    assert!(
        ev["pos"].as_i64().unwrap() > m["pos"].as_i64().unwrap(),
        "delete event carries the new pos"
    );
}

#[tokio::test]
async fn react_op_updates_reactions_with_reaction_change() {
    let server = fast().await;
    let (alice, bob, room, mut aws, mut bws) = pair(&server).await;
    let m = aws.send_message(&room, "react to me").await;
    let id = s(&m["id"]);
    let (reply, _) = call(
        &mut bws,
        json!({"type": "react", "message_id": id, "emoji": "👍", "add": true}),
    )
    .await;
    reply_ok(&reply, "react");
    let (_, ev) = until(&mut aws, |v| {
        v["type"] == "message_updated" && v["message"]["id"] == id.as_str()
    })
    .await;
    assert_eq!(ev["reaction_change"]["user_id"], bob.user["id"]);
    assert_eq!(ev["reaction_change"]["emoji"], "👍");
    assert_eq!(ev["reaction_change"]["add"], true);
    assert_eq!(ev["message"]["reactions"][0]["emoji"], "👍");
    assert_eq!(ev["message"]["reactions"][0]["count"], 1);
    // REST computes `me` per caller.
    let for_bob = &all_messages(&bob, &room).await[0];
    assert_eq!(
        for_bob["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": true}])
    );
    let for_alice = &all_messages(&alice, &room).await[0];
    assert_eq!(
        for_alice["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": false}])
    );
    // Reacting twice with the same emoji is one reaction.
    let (reply, _) = call(
        &mut bws,
        json!({"type": "react", "message_id": id, "emoji": "👍", "add": true}),
    )
    .await;
    reply_ok(&reply, "react again");
    assert_eq!(
        all_messages(&bob, &room).await[0]["reactions"][0]["count"],
        1
    );
    let (reply, _) = call(
        &mut bws,
        json!({"type": "react", "message_id": id, "emoji": "👍", "add": false}),
    )
    .await;
    reply_ok(&reply, "un-react");
    assert_eq!(all_messages(&bob, &room).await[0]["reactions"], json!([]));
}

#[tokio::test]
async fn typing_reaches_others_never_the_typist_and_expires() {
    let server = fast().await;
    let (alice, _bob, room, mut aws, mut bws) = pair(&server).await;
    let mut aws2 = alice.connect().await; // alice's other device
    let aid = alice.id();
    let (reply, _) = call(
        &mut aws,
        json!({"type": "typing", "room_id": room, "active": true}),
    )
    .await;
    reply_ok(&reply, "typing");
    let (_, ev) = until(&mut bws, |v| {
        v["type"] == "typing" && v["room_id"] == room.as_str()
    })
    .await;
    assert_eq!(ev["user_ids"], json!([aid]));
    // The entry expires ~6 s after the last `typing active`: an event with an empty list.
    let (_, ev) = until(&mut bws, |v| {
        v["type"] == "typing" && v["room_id"] == room.as_str()
    })
    .await;
    assert_eq!(ev["user_ids"], json!([]), "typing expiry event: {ev}");
    // The typist's own connections never see themselves typing.
    for ws in [&mut aws, &mut aws2] {
        for f in barrier(ws).await {
            if f["type"] == "typing" {
                assert!(
                    !f["user_ids"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|u| u == aid.as_str()),
                    "typing event includes its receiver: {f}"
                );
            }
        }
    }
}

#[tokio::test]
async fn typing_inactive_clears_immediately() {
    let server = fast().await;
    let (alice, _bob, room, mut aws, mut bws) = pair(&server).await;
    let aid = alice.id();
    let (r, _) = call(
        &mut aws,
        json!({"type": "typing", "room_id": room, "active": true}),
    )
    .await;
    reply_ok(&r, "typing on");
    let (_, ev) = until(&mut bws, |v| v["type"] == "typing").await;
    assert_eq!(ev["user_ids"], json!([aid]));
    let (r, _) = call(
        &mut aws,
        json!({"type": "typing", "room_id": room, "active": false}),
    )
    .await;
    reply_ok(&r, "typing off");
    let (_, ev) = until(&mut bws, |v| v["type"] == "typing").await;
    assert_eq!(ev["user_ids"], json!([]));
}

#[tokio::test]
async fn read_op_sends_receipts_and_updates_unread_count() {
    let server = fast().await;
    let (alice, bob, room, mut aws, mut b1) = pair(&server).await;
    let mut b2 = bob.connect().await;
    for i in 1..=3 {
        send(&alice, &room, &format!("m{i}")).await;
    }
    let e = room_entry(&bob, &room).await.unwrap();
    assert_eq!(e["unread_count"], 3);
    let (reply, _) = call(&mut b1, json!({"type": "read", "room_id": room, "seq": 2})).await;
    reply_ok(&reply, "read");
    let bid = bob.id();
    let is_read = |v: &Value| {
        v["type"] == "read" && v["room_id"] == room.as_str() && v["user_id"] == bid.as_str()
    };
    let (_, ev) = until(&mut b2, is_read).await;
    assert_eq!(ev["seq"], 2);
    let (_, ev) = until(&mut b1, is_read).await; // the reader's own connection too
    assert_eq!(ev["seq"], 2);
    let (_, ev) = until(&mut aws, is_read).await; // every member's connections
    assert_eq!(ev["seq"], 2);
    let e = room_entry(&bob, &room).await.unwrap();
    assert_eq!(e["unread_count"], 1);
    assert_eq!(e["last_read_seq"], 2);
    // REST read does the same.
    ok(
        &bob.post(&format!("/api/v1/rooms/{room}/read"), json!({"seq": 3}))
            .await,
        "REST read",
    );
    let (_, ev) = until(&mut b2, is_read).await;
    assert_eq!(ev["seq"], 3);
    assert_eq!(room_entry(&bob, &room).await.unwrap()["unread_count"], 0);
}

#[tokio::test]
async fn history_op_pages_like_rest() {
    let server = fast().await;
    let (_alice, _bob, room, mut aws, mut bws) = pair(&server).await;
    for i in 1..=5 {
        aws.send_message(&room, &format!("h{i}")).await;
    }
    let (r, _) = call(
        &mut bws,
        json!({"type": "history", "room_id": room, "limit": 2}),
    )
    .await;
    reply_ok(&r, "history");
    assert_eq!(seqs(r["data"]["messages"].as_array().unwrap()), vec![4, 5]);
    assert_eq!(r["data"]["has_more"], true);
    let (r, _) = call(
        &mut bws,
        json!({"type": "history", "room_id": room, "before_seq": 4, "limit": 10}),
    )
    .await;
    reply_ok(&r, "history before_seq");
    assert_eq!(
        seqs(r["data"]["messages"].as_array().unwrap()),
        vec![1, 2, 3]
    );
    assert_eq!(r["data"]["has_more"], false);
    let (r, _) = call(&mut bws, json!({"type": "history", "room_id": room})).await;
    reply_ok(&r, "history default");
    assert_eq!(
        seqs(r["data"]["messages"].as_array().unwrap()),
        vec![1, 2, 3, 4, 5]
    );
}

#[tokio::test]
async fn history_op_respects_visibility() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let secret = new_room(&alice, "secret", json!({"kind": "private"})).await;
    let mut bws = bob.connect().await;
    let (r, _) = call(&mut bws, json!({"type": "history", "room_id": secret})).await;
    reply_err(&r, "not_found", "history of a private room by an outsider");
}

#[tokio::test]
async fn resume_op_answers_per_room_state() {
    let server = fast().await;
    let (_alice, bob, room, mut aws, _bws) = pair(&server).await;
    let pos0 = ready_room(&aws, &room)["pos"].as_i64().unwrap();
    let m = aws.send_message(&room, "after ready").await;
    let mut ws = bob.connect().await;
    let (r, _) = call(
        &mut ws,
        json!({"type": "resume", "rooms": {room.clone(): pos0}}),
    )
    .await;
    reply_ok(&r, "resume");
    let entries = r["data"]["rooms"].as_array().expect("data.rooms");
    let e = entries
        .iter()
        .find(|e| e["room_id"] == room.as_str())
        .expect("room in resume reply");
    assert_eq!(ids(e["messages"].as_array().unwrap()), vec![s(&m["id"])]);
    assert_eq!(e["truncated"], false);
    assert_eq!(e["pos"], m["pos"]);
}

#[tokio::test]
async fn join_and_leave_room_ops_change_live_subscriptions() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let general = alice.general().await;
    let room = new_room(&alice, "drop-in", json!({})).await;
    let locked = new_room(&alice, "locked", json!({"password": "letmein!"})).await;
    let mut bws = bob.connect().await;

    let (r, _) = call(&mut bws, json!({"type": "join_room", "room_id": room})).await;
    reply_ok(&r, "join_room");
    assert_eq!(r["data"]["id"], room.as_str(), "join_room answers the room");
    let m = send(&alice, &room, "you joined live").await;
    let mid = s(&m["id"]);
    until(&mut bws, |v| is_msg_id(v, &mid)).await;

    let (r, _) = call(&mut bws, json!({"type": "leave_room", "room_id": room})).await;
    reply_ok(&r, "leave_room");
    send(&alice, &room, "you should not see this").await;
    let g = send(&alice, &general, "barrier").await;
    let gid = s(&g["id"]);
    let (before, _) = until(&mut bws, |v| is_msg_id(v, &gid)).await;
    assert!(
        !before.iter().any(|v| is_msg(v, &room)),
        "message of a left room delivered: {}",
        short(&before)
    );

    let (r, _) = call(
        &mut bws,
        json!({"type": "join_room", "room_id": locked, "password": "wrong"}),
    )
    .await;
    reply_err(&r, "forbidden", "join_room with a wrong password");
    let (r, _) = call(
        &mut bws,
        json!({"type": "join_room", "room_id": locked, "password": "letmein!"}),
    )
    .await;
    reply_ok(&r, "join_room with the password");
    let (r, _) = call(&mut bws, json!({"type": "join_room", "room_id": "nope"})).await;
    reply_err(&r, "not_found", "join_room unknown");
}

#[tokio::test]
async fn presence_op_broadcasts_status() {
    let server = fast().await;
    let (alice, _bob, _room, mut aws, mut bws) = pair(&server).await;
    let aid = alice.id();
    for status in ["away", "dnd", "online"] {
        let (r, _) = call(&mut aws, json!({"type": "presence", "status": status})).await;
        reply_ok(&r, &format!("presence {status}"));
        let (_, ev) = until(&mut bws, |v| is_presence(v, &aid, status)).await;
        assert!(ev["last_seen_at"].is_null() || status != "online");
    }
    let (r, _) = call(&mut aws, json!({"type": "presence", "status": "offline"})).await;
    reply_err(&r, "invalid", "presence offline is not a settable status");
    let (r, _) = call(&mut aws, json!({"type": "presence", "status": "sleeping"})).await;
    reply_err(&r, "invalid", "unknown presence status");
}

#[tokio::test]
async fn ping_op_answers_server_time() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let mut ws = alice.connect().await;
    let (r, _) = call(&mut ws, json!({"type": "ping"})).await;
    reply_ok(&r, "ping");
    let t = s(&r["data"]["server_time"]);
    assert!(
        t.len() >= 20 && t.as_bytes()[10] == b'T',
        "server_time {t:?} is not RFC 3339"
    );
}

#[tokio::test]
async fn req_is_echoed_exactly_as_given() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let mut ws = alice.connect().await;
    for req in [json!("abc-1"), json!(42), json!("42"), json!(0), json!("")] {
        ws.send_json(json!({"type": "ping", "req": req})).await;
        let (_, r) = until(&mut ws, |v| v["type"] == "reply").await;
        assert_eq!(r["req"], req, "req echoed with its type and value");
        assert_eq!(r["ok"], true);
    }
}

#[tokio::test]
async fn frames_without_req_are_processed_but_unanswered() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "noreq", json!({})).await;
    let mut ws = alice.connect().await;
    ws.send_json(json!({"type": "ping"})).await;
    ws.send_json(
        json!({"type": "send", "room_id": room, "client_id": "no-req", "body": "fire and forget"}),
    )
    .await;
    ws.send_json(json!({"type": "ping", "req": "last"})).await;
    let (before, reply) = until(&mut ws, |v| v["type"] == "reply" && v["req"] == "last").await;
    assert_eq!(reply["ok"], true);
    assert!(
        !before
            .iter()
            .any(|v| v["type"] == "reply" || v["type"] == "error"),
        "a frame without req was answered: {}",
        short(&before)
    );
    // The send was processed: its message event arrives and it is stored.
    let seen = before.iter().any(|v| is_msg(v, &room)) || {
        until(&mut ws, |v| is_msg(v, &room)).await;
        true
    };
    assert!(seen);
    let msgs = all_messages(&alice, &room).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["client_id"], "no-req");
}

#[tokio::test]
async fn malformed_frames_get_invalid_and_the_connection_stays_open() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "garbage", json!({})).await;
    let mut ws = alice.connect().await;
    let r = room.as_str();
    // (frame text, Some(req) → expect a reply with that req; None → expect an error frame)
    let cases: Vec<(String, Option<Value>)> = vec![
        ("this is not json".into(), None),
        (
            format!("{{\"type\":\"send\",\"req\":\"t1\",\"room_id\":\"{r}\""),
            None,
        ),
        ("[1,2,3]".into(), None),
        ("\"just a string\"".into(), None),
        ("{\"type\":\"bogus_op\"}".into(), None),
        (
            json!({"type": "definitely_not_an_op", "req": "t2"}).to_string(),
            Some(json!("t2")),
        ),
        (
            json!({"req": "t3", "room_id": r}).to_string(),
            Some(json!("t3")),
        ),
        (json!({"type": 42, "req": 7}).to_string(), Some(json!(7))),
        (
            json!({"type": "send", "req": "t4"}).to_string(),
            Some(json!("t4")),
        ),
        (
            json!({"type": "send", "req": "t5", "room_id": r, "client_id": "c", "body": 42})
                .to_string(),
            Some(json!("t5")),
        ),
        (
            json!({"type": "send", "req": "t6", "room_id": 5, "client_id": "c", "body": "hi"})
                .to_string(),
            Some(json!("t6")),
        ),
        (
            json!({"type": "send", "req": "t7", "room_id": r, "body": "no client id"}).to_string(),
            Some(json!("t7")),
        ),
        (
            json!({"type": "read", "req": "t8", "room_id": r, "seq": "three"}).to_string(),
            Some(json!("t8")),
        ),
        (
            json!({"type": "typing", "req": "t9", "room_id": r, "active": "yes"}).to_string(),
            Some(json!("t9")),
        ),
        (
            json!({"type": "react", "req": "t10", "message_id": "m", "emoji": "x"}).to_string(),
            Some(json!("t10")),
        ),
        (
            json!({"type": "resume", "req": "t11", "rooms": [1, 2]}).to_string(),
            Some(json!("t11")),
        ),
        (
            json!({"type": "edit", "req": 12, "message_id": "m"}).to_string(),
            Some(json!(12)),
        ),
    ];
    for (text, req) in cases {
        send_text_frame(&mut ws, text.clone()).await;
        let (_, f) = until(&mut ws, |v| v["type"] == "reply" || v["type"] == "error").await;
        match req {
            Some(req) => {
                assert_eq!(f["type"], "reply", "{text}: expected a reply, got {f}");
                assert_eq!(f["req"], req, "{text}: reply req");
                assert_eq!(f["ok"], false, "{text}: {f}");
                assert_eq!(f["error"]["code"], "invalid", "{text}: {f}");
                assert!(f["error"]["message"].is_string(), "{text}: {f}");
            }
            None => {
                assert_eq!(
                    f["type"], "error",
                    "{text}: expected an error frame, got {f}"
                );
                assert_eq!(f["error"]["code"], "invalid", "{text}: {f}");
                assert!(f["error"]["message"].is_string(), "{text}: {f}");
            }
        }
    }
    // Still open and working; nothing was stored.
    let m = ws.send_message(&room, "still here").await;
    assert_eq!(m["seq"], 1, "a malformed frame stored a message");
}

#[tokio::test]
async fn more_than_20_malformed_frames_a_minute_close_with_1008() {
    let server = Server::start().await; // default limits
    let alice = server.register("alice", PW).await;
    let mut ws = alice.connect().await;
    for i in 0..20 {
        send_text_frame(&mut ws, format!("garbage #{i}")).await;
        let (_, f) = until(&mut ws, |v| v["type"] == "error").await;
        assert_eq!(f["error"]["code"], "invalid");
    }
    barrier(&mut ws).await; // 20 is tolerated
    send_text_frame(&mut ws, "garbage #21".into()).await;
    let close = ws.recv_close().await;
    assert_eq!(
        close.map(|c| c.0),
        Some(1008),
        "21st malformed frame within a minute"
    );
    // The server keeps serving: a new connection works.
    let mut again = alice.connect().await;
    barrier(&mut again).await;
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_with_1009() {
    let server = Server::start().await;
    let alice = server.register("alice", PW).await;
    let general = alice.general().await;
    let mut ws = alice.connect().await;
    // Just under the frame limit: an ordinary `invalid` (body too long), still open.
    let body = "y".repeat(60 * 1024);
    let (r, _) = call(
        &mut ws,
        json!({"type": "send", "room_id": general, "client_id": "big1", "body": body}),
    )
    .await;
    reply_err(&r, "invalid", "60 KiB body");
    // Over the limit: closed with 1009.
    let body = "x".repeat(70 * 1024);
    send_text_frame(
        &mut ws,
        json!({"type": "send", "req": "huge", "room_id": general, "client_id": "big2", "body": body}).to_string(),
    )
    .await;
    let close = ws.recv_close().await;
    assert_eq!(close.map(|c| c.0), Some(1009), "frame over 64 KiB");
    assert!(all_messages(&alice, &general).await.is_empty());
    let mut again = alice.connect().await;
    barrier(&mut again).await;
}

#[tokio::test]
async fn unauthenticated_upgrades_are_refused_with_401() {
    let server = fast().await;
    server.register("alice", PW).await;
    assert_eq!(
        ws_try(&server, None, &[]).await.err(),
        Some(401),
        "no credentials"
    );
    assert_eq!(
        ws_try(&server, Some("bogus-token"), &[]).await.err(),
        Some(401),
        "bad token"
    );
    let cookie = vec![("Cookie", "hubbub_session=bogus".to_string())];
    assert_eq!(
        ws_try(&server, None, &cookie).await.err(),
        Some(401),
        "bad cookie"
    );
}

#[tokio::test]
async fn cookie_upgrades_are_origin_checked_token_upgrades_are_not() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let cookie = ("Cookie", format!("hubbub_session={}", alice.token()));
    let evil = ("Origin", "http://evil.example".to_string());
    let own = ("Origin", server.base.clone());

    let r = ws_try(&server, None, &[cookie.clone(), evil.clone()]).await;
    assert_eq!(r.err(), Some(403), "cookie upgrade from a foreign origin");
    let ws = ws_try(&server, None, &[cookie.clone(), own])
        .await
        .expect("cookie upgrade, own origin");
    assert_eq!(ws.ready["user"]["id"], alice.user["id"]);
    let ws = ws_try(&server, None, &[cookie])
        .await
        .expect("cookie upgrade, no origin");
    assert_eq!(ws.ready["user"]["id"], alice.user["id"]);
    let ws = ws_try(&server, Some(alice.token()), &[evil])
        .await
        .expect("?token= upgrade, foreign origin");
    assert_eq!(ws.ready["user"]["id"], alice.user["id"]);
}

#[tokio::test]
async fn op_errors_use_the_spec_codes() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "alice-only", json!({})).await;
    let secret = new_room(&alice, "secret", json!({"kind": "private"})).await;
    let mut bws = bob.connect().await;
    let (r, _) = call(&mut bws, ws_send_frame(&room, "not a member")).await;
    reply_err(&r, "forbidden", "send to a room one is not a member of");
    let (r, _) = call(&mut bws, ws_send_frame(&secret, "outsider")).await;
    reply_err(&r, "not_found", "send to a private room as an outsider");
    let (r, _) = call(&mut bws, ws_send_frame("no-such-room", "lost")).await;
    reply_err(&r, "not_found", "send to an unknown room");
    let general = bob.general().await;
    let (r, _) = call(&mut bws, ws_send_frame(&general, "  \n ")).await;
    reply_err(&r, "invalid", "whitespace body");
    assert!(all_messages(&bob, &general).await.is_empty());
    assert!(all_messages(&alice, &room).await.is_empty());
}

/// Large frames (a `ready` listing many users, a history reply of long messages) are
/// written straight to the socket rather than through the WebSocket library's write
/// buffer; they must still arrive whole, as one text message each, and leave the
/// framing intact for everything sent after them.
#[tokio::test]
async fn large_frames_arrive_whole_between_small_ones() {
    let server = fast().await;
    let alice = server.register("alice", PW).await;
    let general = alice.general().await;
    for i in 0..40 {
        server.guest(&format!("guest{i}")).await;
    }
    let mut ws = alice.connect().await;
    let users = ws.ready["users"].as_array().expect("ready.users").len();
    assert!(users > 40, "ready lists everyone in General: {users}");
    assert!(
        ws.ready.to_string().len() > 8 * 1024,
        "the ready frame is large"
    );
    let long = "z".repeat(3000);
    for i in 0..4 {
        send(&alice, &general, &format!("{i}{long}")).await;
    }
    let events = barrier(&mut ws).await;
    assert_eq!(events.iter().filter(|e| e["type"] == "message").count(), 4);
    let (r, _) = call(
        &mut ws,
        json!({"type": "history", "room_id": general, "limit": 10}),
    )
    .await;
    reply_ok(&r, "history of long messages");
    assert_eq!(r["data"]["messages"].as_array().map(|m| m.len()), Some(4));
    assert!(r.to_string().len() > 12_000, "the history reply is large");
    barrier(&mut ws).await;
}
