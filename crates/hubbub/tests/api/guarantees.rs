//! SPEC §8 delivery guarantees, one or more tests each.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::common::*;
use crate::support::*;

fn seq_of(v: &Value) -> i64 {
    v["message"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("no seq in {v}"))
}

// (1) Durable before visible ---------------------------------------------------------

#[tokio::test]
async fn g1_acknowledged_messages_survive_kill_9() {
    let mut server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let general = alice.general().await;
    let mut ws = alice.connect().await;
    // Pipeline 20 sends and wait for every acknowledgement.
    let mut reqs = HashSet::new();
    for i in 0..20 {
        let req = fresh_req();
        let mut f = ws_send_frame(&general, &format!("durable {i}"));
        f["req"] = json!(req);
        reqs.insert(req);
        ws.send_json(f).await;
    }
    let mut acked = Vec::new();
    while !reqs.is_empty() {
        let v = ws.recv().await.expect("closed before all acks");
        if v["type"] == "reply" && v["req"].as_str().is_some_and(|r| reqs.remove(r)) {
            reply_ok(&v, "send");
            acked.push(v["data"].clone());
        }
    }
    acked.push(send(&alice, &general, "durable over REST").await);
    // kill -9 right after the last acknowledgement: no shutdown code runs.
    server.kill9().await;
    server.restart().await;

    let msgs = all_messages(&alice, &general).await;
    let by_id: HashMap<String, &Value> = msgs.iter().map(|m| (s(&m["id"]), m)).collect();
    for a in &acked {
        let m = by_id
            .get(&s(&a["id"]))
            .unwrap_or_else(|| panic!("acknowledged message lost by kill -9: {a}"));
        assert_eq!(m["seq"], a["seq"]);
        assert_eq!(m["body"], a["body"]);
    }
    assert_eq!(msgs.len(), 21);
    // Numbering continues without reuse.
    assert_eq!(send(&alice, &general, "after restart").await["seq"], 22);
}

// (2) Same order everywhere -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g2_concurrent_senders_every_member_sees_the_same_seq_order() {
    const SENDERS: usize = 4;
    const PER: usize = 25;
    const TOTAL: usize = SENDERS * PER;
    let server = fast().await;
    let root = server.register("root", PW).await;
    let room = new_room(&root, "race", json!({})).await;
    let mut users = Vec::new();
    for i in 0..SENDERS + 2 {
        let u = server.register(&format!("user{i}"), PW).await;
        join_ok(&u, &room).await;
        users.push(u);
    }
    let mut conns = Vec::new();
    for u in &users {
        conns.push(u.connect().await);
    }
    let mut tasks = Vec::new();
    for (i, mut ws) in conns.into_iter().enumerate() {
        let room = room.clone();
        let sends = if i < SENDERS { PER } else { 0 };
        tasks.push(tokio::spawn(async move {
            let mut reqs = HashSet::new();
            for k in 0..sends {
                let req = fresh_req();
                let mut f = ws_send_frame(&room, &format!("sender {i} message {k}"));
                f["req"] = json!(req);
                reqs.insert(req);
                ws.send_json(f).await;
            }
            let mut seen = Vec::new();
            while seen.len() < TOTAL || !reqs.is_empty() {
                let v = ws.recv().await.expect("closed");
                if v["type"] == "reply" {
                    if let Some(r) = v["req"].as_str()
                        && reqs.remove(r)
                    {
                        assert_eq!(v["ok"], true, "send failed: {v}");
                    }
                } else if is_msg(&v, &room) {
                    seen.push((seq_of(&v), s(&v["message"]["id"])));
                }
            }
            seen
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    let want: Vec<i64> = (1..=TOTAL as i64).collect();
    for (i, r) in results.iter().enumerate() {
        let got: Vec<i64> = r.iter().map(|x| x.0).collect();
        assert_eq!(
            got, want,
            "connection {i} did not see seq 1..={TOTAL} in order, each once"
        );
        assert_eq!(
            r, &results[0],
            "connection {i} saw a different message order than connection 0"
        );
    }
    let stored = all_messages(&root, &room).await;
    assert_eq!(
        ids(&stored),
        results[0].iter().map(|x| x.1.clone()).collect::<Vec<_>>()
    );
}

// (3) Nothing lost across reconnects ----------------------------------------------------

#[tokio::test]
async fn g3_resume_after_a_dropped_connection_returns_every_change_once_in_pos_order() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let general = alice.general().await;
    let room = new_room(&alice, "resumable", json!({})).await;
    join_ok(&bob, &room).await;
    let m_a = send(&bob, &room, "a").await;
    let m_b = send(&bob, &room, "b").await;
    let m_c = send(&bob, &room, "c").await;

    let a1 = alice.connect().await;
    let last_pos = ready_room(&a1, &room)["pos"]
        .as_i64()
        .expect("ready room pos");
    let general_pos = ready_room(&a1, &general)["pos"]
        .as_i64()
        .expect("ready room pos");
    assert_eq!(
        last_pos,
        m_c["pos"].as_i64().unwrap(),
        "ready pos is the room's latest pos"
    );
    drop(a1); // the connection drops without a goodbye

    // While alice is away: edit, delete, new messages, an edit of a new one, a reaction.
    let id = |m: &Value| s(&m["id"]);
    ok(
        &bob.patch(
            &format!("/api/v1/messages/{}", id(&m_a)),
            json!({"body": "a (edited)"}),
        )
        .await,
        "edit a",
    );
    ok(
        &bob.delete(&format!("/api/v1/messages/{}", id(&m_b))).await,
        "delete b",
    );
    let m_d = send(&bob, &room, "d").await;
    let m_e = send(&bob, &room, "e").await;
    ok(
        &bob.patch(
            &format!("/api/v1/messages/{}", id(&m_d)),
            json!({"body": "d (edited)"}),
        )
        .await,
        "edit d",
    );
    let mut a2 = alice.connect().await;
    let (reply, before) = call(
        &mut a2,
        json!({"type": "resume", "rooms": {room.clone(): last_pos, general.clone(): general_pos}}),
    )
    .await;
    reply_ok(&reply, "resume");
    assert!(
        !before.iter().any(|v| is_change(v, &room)),
        "nothing changed since connect, yet live changes arrived: {}",
        short(&before)
    );
    let entries = reply["data"]["rooms"].as_array().expect("data.rooms");
    let e = entries
        .iter()
        .find(|e| e["room_id"] == room.as_str())
        .expect("room entry");
    let msgs = e["messages"].as_array().unwrap();
    assert_eq!(
        ids(msgs),
        vec![id(&m_a), id(&m_b), id(&m_e), id(&m_d)],
        "every changed message once, in pos order (a edited, b deleted, e new, d new+edited)"
    );
    let poss: Vec<i64> = msgs.iter().map(|m| m["pos"].as_i64().unwrap()).collect();
    assert!(
        poss.windows(2).all(|w| w[0] < w[1]),
        "resume messages not in pos order: {poss:?}"
    );
    assert!(poss[0] > last_pos);
    assert_eq!(msgs[0]["body"], "a (edited)");
    assert!(msgs[0]["edited_at"].is_string());
    assert_eq!(msgs[1]["deleted"], true);
    assert_eq!(msgs[1]["body"], "");
    assert_eq!(msgs[2]["body"], "e");
    assert_eq!(msgs[3]["body"], "d (edited)");
    assert_eq!(e["truncated"], false);
    let room_pos = e["pos"].as_i64().unwrap();
    assert!(
        room_pos >= *poss.last().unwrap(),
        "room pos {room_pos} behind its messages"
    );
    let g = entries
        .iter()
        .find(|e| e["room_id"] == general.as_str())
        .expect("general entry");
    assert_eq!(g["messages"], json!([]), "nothing changed in General");
    assert_eq!(g["pos"], general_pos);

    // Live events follow the reply, with no gap and no duplicate.
    let m_f = send(&bob, &room, "f").await;
    let fid = id(&m_f);
    let (between, ev) = until(&mut a2, |v| is_msg_id(v, &fid)).await;
    assert!(
        !between.iter().any(|v| is_change(v, &room)),
        "replayed or extra changes after the resume reply: {}",
        short(&between)
    );
    assert!(ev["pos"].as_i64().unwrap() > room_pos);
    assert_eq!(ev["message"]["seq"], 6);
}

#[tokio::test]
async fn g3_resume_includes_reaction_and_reply_count_changes() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "reactions", json!({})).await;
    join_ok(&bob, &room).await;
    let m1 = send(&bob, &room, "react to me").await;
    let m2 = send(&bob, &room, "thread root").await;
    let a1 = alice.connect().await;
    let last_pos = ready_room(&a1, &room)["pos"].as_i64().unwrap();
    drop(a1);
    let r = bob
        .put(
            &format!("/api/v1/messages/{}/reactions/%F0%9F%91%8D", s(&m1["id"])),
            json!({}),
        )
        .await;
    ok(&r, "react");
    let r = send_raw(
        &bob,
        &room,
        json!({"body": "in the thread", "thread_root": m2["id"]}),
    )
    .await;
    ok(&r, "thread reply");
    let reply_id = s(&r.body["id"]);
    let mut a2 = alice.connect().await;
    let (reply, _) = call(
        &mut a2,
        json!({"type": "resume", "rooms": {room.clone(): last_pos}}),
    )
    .await;
    reply_ok(&reply, "resume");
    let e = &reply["data"]["rooms"][0];
    let msgs = e["messages"].as_array().unwrap();
    let got = ids(msgs);
    // The reaction change, the new reply, and the root whose reply_count changed.
    assert!(
        got.contains(&s(&m1["id"])),
        "reacted message missing from resume: {got:?}"
    );
    assert!(
        got.contains(&reply_id),
        "new thread reply missing from resume: {got:?}"
    );
    assert!(
        got.contains(&s(&m2["id"])),
        "root whose reply_count changed missing from resume: {got:?}"
    );
    assert_eq!(got.len(), 3, "each changed message once: {got:?}");
    let poss: Vec<i64> = msgs.iter().map(|m| m["pos"].as_i64().unwrap()).collect();
    assert!(
        poss.windows(2).all(|w| w[0] < w[1]),
        "resume messages not in pos order: {poss:?}"
    );
    let r1 = msgs.iter().find(|m| m["id"] == m1["id"]).unwrap();
    assert_eq!(
        r1["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": false}])
    );
    let root = msgs.iter().find(|m| m["id"] == m2["id"]).unwrap();
    assert_eq!(root["reply_count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g3_resume_during_concurrent_sends_delivers_each_message_exactly_once() {
    const BEFORE: i64 = 10;
    const LIVE: i64 = 60;
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "busy", json!({})).await;
    join_ok(&bob, &room).await;
    for i in 0..BEFORE {
        send(&bob, &room, &format!("before {i}")).await;
    }
    let a1 = alice.connect().await;
    let last_pos = ready_room(&a1, &room)["pos"].as_i64().unwrap();
    drop(a1);

    let (tx, rx) = tokio::sync::oneshot::channel();
    let (bob2, room2) = (bob.clone(), room.clone());
    let sender = tokio::spawn(async move {
        let mut tx = Some(tx);
        for i in 0..LIVE {
            send(&bob2, &room2, &format!("live {i}")).await;
            if i == 19 {
                let _ = tx.take().unwrap().send(());
            }
        }
    });
    rx.await.unwrap();
    // Reconnect while messages are still being sent.
    let mut a2 = alice.connect().await;
    let (reply, before) = call(
        &mut a2,
        json!({"type": "resume", "rooms": {room.clone(): last_pos}}),
    )
    .await;
    reply_ok(&reply, "resume");
    let mut seen: Vec<i64> = before
        .iter()
        .filter(|v| is_msg(v, &room))
        .map(seq_of)
        .collect();
    let e = reply["data"]["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["room_id"] == room.as_str())
        .expect("room entry")
        .clone();
    let msgs = e["messages"].as_array().unwrap();
    let poss: Vec<i64> = msgs.iter().map(|m| m["pos"].as_i64().unwrap()).collect();
    assert!(
        poss.windows(2).all(|w| w[0] < w[1]),
        "resume messages not in pos order: {poss:?}"
    );
    seen.extend(seqs(msgs));
    let snapshot_pos = e["pos"].as_i64().unwrap();

    let last = BEFORE + LIVE;
    let mut after = Vec::new();
    while !seen.contains(&last) {
        let v = a2.recv().await.expect("closed");
        if is_change(&v, &room) {
            assert_eq!(v["type"], "message", "unexpected change event {v}");
            assert!(
                v["pos"].as_i64().unwrap() > snapshot_pos,
                "live event already covered by the resume snapshot (pos {} <= {snapshot_pos})",
                v["pos"]
            );
            after.push(seq_of(&v));
            seen.push(seq_of(&v));
        }
    }
    sender.await.unwrap();
    for v in barrier(&mut a2).await {
        if is_change(&v, &room) {
            seen.push(seq_of(&v));
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (BEFORE + 1..=last).collect::<Vec<_>>(),
        "every missed message exactly once (delivery order: {seen:?})"
    );
    assert!(
        after.windows(2).all(|w| w[1] == w[0] + 1),
        "live events after the reply have a gap or are out of order: {after:?}"
    );
}

#[tokio::test]
async fn g3_resume_with_more_than_1000_changes_is_truncated_to_the_newest_1000() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "flood", json!({})).await;
    join_ok(&bob, &room).await;
    let a1 = alice.connect().await;
    let last_pos = ready_room(&a1, &room)["pos"].as_i64().unwrap();
    drop(a1);
    bulk_send(&bob, &room, 1005, "flood").await;
    let mut a2 = alice.connect().await;
    let (reply, _) = call(
        &mut a2,
        json!({"type": "resume", "rooms": {room.clone(): last_pos}}),
    )
    .await;
    reply_ok(&reply, "resume");
    let e = &reply["data"]["rooms"][0];
    assert_eq!(e["room_id"], room.as_str());
    assert_eq!(e["truncated"], true);
    let msgs = e["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1000);
    assert_eq!(
        seqs(msgs),
        (6..=1005).collect::<Vec<_>>(),
        "the newest 1000, in order"
    );
    // The rest is paged over REST.
    let (older, _) = history(&alice, &room, "before_seq=6").await;
    assert_eq!(seqs(&older), vec![1, 2, 3, 4, 5]);
}

// (4) Safe retries --------------------------------------------------------------------

#[tokio::test]
async fn g4_a_retry_after_a_lost_ack_creates_no_duplicate() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "retries", json!({})).await;
    let frame =
        json!({"type": "send", "room_id": room, "client_id": "retry-me", "body": "exactly once"});
    // Send, then lose the connection before reading the acknowledgement.
    let mut ws = alice.connect().await;
    let mut f = frame.clone();
    f["req"] = json!("lost");
    ws.send_json(f).await;
    drop(ws);
    // Retry on a new connection, twice.
    let mut ws = alice.connect().await;
    let (r1, _) = call(&mut ws, frame.clone()).await;
    reply_ok(&r1, "retry 1");
    let (r2, _) = call(&mut ws, frame.clone()).await;
    reply_ok(&r2, "retry 2");
    assert_eq!(r1["data"]["id"], r2["data"]["id"]);
    let msgs = all_messages(&alice, &room).await;
    assert_eq!(msgs.len(), 1, "retries created duplicates");
    assert_eq!(msgs[0]["id"], r1["data"]["id"]);
    assert_eq!(msgs[0]["seq"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g4_simultaneous_duplicates_store_one_message() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "dupes", json!({})).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let alice = alice.clone();
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let mut ws = alice.connect().await;
                let (r, _) = call(
                    &mut ws,
                    json!({"type": "send", "room_id": room, "client_id": "same", "body": "once"}),
                )
                .await;
                reply_ok(&r, "gateway duplicate");
                s(&r["data"]["id"])
            } else {
                let r = send_raw(&alice, &room, json!({"client_id": "same", "body": "once"})).await;
                ok(&r, "REST duplicate");
                s(&r.body["id"])
            }
        }));
    }
    let mut got = HashSet::new();
    for t in tasks {
        got.insert(t.await.unwrap());
    }
    assert_eq!(
        got.len(),
        1,
        "simultaneous sends with one client_id gave different messages: {got:?}"
    );
    assert_eq!(all_messages(&alice, &room).await.len(), 1);
}

// (5) Slow consumers do not slow the room ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g5_a_client_that_stops_reading_is_disconnected_while_others_keep_receiving() {
    let server = fast_with(&["--outbound-queue", "16", "--presence-grace-ms", "100"]).await;
    let root = server.register("root", PW).await;
    let slow = server.register("slowpoke", PW).await;
    let reader_user = server.register("reader", PW).await;
    let room = new_room(&root, "firehose", json!({})).await;
    join_ok(&slow, &room).await;
    join_ok(&reader_user, &room).await;

    let mut slow_ws = connect_small_rcvbuf(&slow, 4096).await; // reads `ready`, then stops
    let mut reader = reader_user.connect().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let reader_task = tokio::spawn(async move {
        while let Some(v) = reader.recv().await {
            if tx.send(v).is_err() {
                break;
            }
        }
    });

    let sid = slow.id();
    let body = "z".repeat(3000);
    let mut sent: i64 = 0;
    let mut received: i64 = 0;
    let mut slow_gone = false;
    while !slow_gone && sent < 2000 {
        for _ in 0..25 {
            send(&root, &room, &body).await;
            sent += 1;
        }
        // The reading client has every message so far, in order.
        while received < sent {
            let v = tokio::time::timeout(WAIT, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("reader stalled at seq {received} of {sent}"))
                .expect("the reading client was disconnected");
            if is_msg(&v, &room) {
                assert_eq!(
                    seq_of(&v),
                    received + 1,
                    "reader skipped or repeated a message"
                );
                received += 1;
            } else if is_presence(&v, &sid, "offline") {
                slow_gone = true;
            }
        }
        while let Ok(v) = rx.try_recv() {
            if is_presence(&v, &sid, "offline") {
                slow_gone = true;
            }
            assert!(!is_msg(&v, &room), "extra message event {v}");
        }
    }
    reader_task.abort();

    // Now look at what the slow client got: it must have been cut off, with a reason.
    let mut got = 0;
    let mut close: Option<Option<u16>> = None;
    loop {
        match tokio::time::timeout(WAIT, slow_ws.stream.next()).await {
            Err(_) => panic!(
                "the slow consumer was never disconnected (it holds {got} of {sent} messages)"
            ),
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(WsMessage::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if is_msg(&v, &room) {
                    got += 1;
                }
            }
            Ok(Some(Ok(WsMessage::Close(cf)))) => {
                close = Some(cf.map(|c| u16::from(c.code)));
                break;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    assert!(
        got < sent,
        "the slow consumer received everything ({got}/{sent}); it was not cut off"
    );
    assert_eq!(
        close,
        Some(Some(1008)),
        "a slow consumer is closed with code 1008 and a reason"
    );
}

// (6) Presence is honest -----------------------------------------------------------------

#[tokio::test]
async fn g6_offline_only_after_the_grace_period() {
    let server = fast_with(&["--presence-grace-ms", "1500"]).await;
    let (_root, alice, bob) = trio(&server).await;
    let general = bob.general().await;
    let aid = alice.id();
    let mut bws = bob.connect().await;
    let mut aws = alice.connect().await;
    until(&mut bws, |v| is_presence(v, &aid, "online")).await;

    let _ = aws.stream.close(None).await;
    drop(aws);
    // Lower bound only: the grace is a minimum, so nothing within the first 300 ms.
    let early = collect_for(&mut bws, Duration::from_millis(300)).await;
    assert!(
        !early.iter().any(|v| is_presence(v, &aid, "offline")),
        "offline announced before the grace period: {}",
        short(&early)
    );
    let (_, ev) = until(&mut bws, |v| is_presence(v, &aid, "offline")).await;
    assert!(
        ev["last_seen_at"].is_string(),
        "offline presence carries last_seen_at: {ev}"
    );
    let list = members(&bob, &general).await;
    let a = list
        .iter()
        .find(|m| m["user"]["id"] == aid.as_str())
        .unwrap();
    assert_eq!(a["user"]["status"], "offline");
    assert!(a["user"]["last_seen_at"].is_string());
}

#[tokio::test]
async fn g6_reconnecting_within_the_grace_does_not_flap() {
    let server = fast_with(&["--presence-grace-ms", "3000"]).await;
    let (_root, alice, bob) = trio(&server).await;
    let carol = server.register("carol", PW).await;
    let (aid, cid) = (alice.id(), carol.id());
    let a1 = alice.connect().await;
    let c1 = carol.connect().await;
    let mut bws = bob.connect().await;
    let users = bws.ready["users"].as_array().unwrap().clone();
    for id in [&aid, &cid] {
        let u = users
            .iter()
            .find(|u| u["id"] == id.as_str())
            .expect("in ready.users");
        assert_eq!(u["status"], "online");
    }
    // Alice reloads the page: her only connection closes and a new one opens at once.
    drop(a1);
    let _a2 = alice.connect().await;
    // Carol leaves for good *after* alice's reload; her offline marks the end of alice's grace.
    drop(c1);
    let (before, ev) = until(&mut bws, |v| is_presence(v, &cid, "offline")).await;
    assert!(ev["last_seen_at"].is_string());
    assert!(
        !before.iter().any(|v| is_presence(v, &aid, "offline")),
        "a reload within the grace period announced offline: {}",
        short(&before)
    );
    let general = bob.general().await;
    let list = members(&bob, &general).await;
    let a = list
        .iter()
        .find(|m| m["user"]["id"] == aid.as_str())
        .unwrap();
    assert_eq!(a["user"]["status"], "online");
}

// (7) Large rooms stay cheap --------------------------------------------------------------

#[tokio::test]
async fn g7_large_rooms_send_no_membership_or_presence_events() {
    let server = fast_with(&["--large-room-threshold", "3"]).await;
    let root = server.register("root", PW).await;
    let a = server.register("anna", PW).await;
    let b = server.register("ben", PW).await;
    let c = server.register("cleo", PW).await;
    let d = server.register("dan", PW).await;
    // General now has 5 members (> 3): large. "small" has anna and ben. "big" has 4.
    let small = new_room(&a, "small", json!({})).await;
    join_ok(&b, &small).await;
    let big = new_room(&root, "big", json!({})).await;
    for u in [&a, &c, &d] {
        join_ok(u, &big).await;
    }
    let general = a.general().await;

    let mut aws = a.connect().await;
    let mut ready_ids: Vec<String> = aws.ready["users"]
        .as_array()
        .expect("ready.users")
        .iter()
        .map(|u| s(&u["id"]))
        .collect();
    ready_ids.sort();
    let mut want = vec![a.id(), b.id()];
    want.sort();
    assert_eq!(
        ready_ids, want,
        "ready.users holds only users sharing a small room (or self)"
    );

    // Things that must NOT reach anna: they happen only in large rooms.
    let e = server.register("eve", PW).await; // joins General (large)
    let _ews = e.connect().await; // presence of someone sharing only large rooms
    join_ok(&e, &big).await; // member_joined in a large room
    let _dws = d.connect().await;
    // Positive controls that MUST reach anna, issued afterwards.
    join_ok(&c, &small).await; // small now has 3 members: still small
    let _bws = b.connect().await;
    let (cid, bid) = (c.id(), b.id());
    let mut got_join = false;
    let mut got_presence = false;
    let mut frames = Vec::new();
    while !(got_join && got_presence) {
        let v = aws.recv().await.expect("closed");
        if v["type"] == "member_joined"
            && v["room_id"] == small.as_str()
            && v["user"]["id"] == cid.as_str()
        {
            got_join = true;
        } else if is_presence(&v, &bid, "online") {
            got_presence = true;
        }
        frames.push(v);
    }
    frames.extend(barrier(&mut aws).await);
    let (eid, did) = (e.id(), d.id());
    for f in &frames {
        let ty = f["type"].as_str().unwrap_or("");
        let about = |id: &str| f["user_id"] == id || f["user"]["id"] == id;
        assert!(
            !(ty == "member_joined" || ty == "member_left")
                || (f["room_id"] != big.as_str() && f["room_id"] != general.as_str()),
            "membership event of a large room delivered: {f}"
        );
        assert!(
            !(ty == "presence" && (about(&eid) || about(&did))),
            "presence of a user sharing only large rooms delivered: {f}"
        );
    }
    // Clients still see the count and page the member list over REST.
    let entry = room_entry(&a, &big).await.unwrap();
    assert_eq!(entry["member_count"], 5);
    let r = a.get(&format!("/api/v1/rooms/{big}/members?limit=2")).await;
    ok(&r, "paged members of a large room");
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
}
