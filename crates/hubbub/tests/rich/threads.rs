//! SPEC §6 threads and replies, §7 `GET /messages/{id}/thread`.

use serde_json::{Value, json};

use crate::support::*;

async fn thread(api: &Api, id: &str, query: &str) -> (Vec<Value>, bool) {
    let path = format!("/api/v1/messages/{id}/thread{query}");
    let r = api.get(&path).await;
    ok(&r, &format!("GET {path}"));
    let msgs = r.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages: {}", text(&r)))
        .clone();
    let more = r.body["has_more"]
        .as_bool()
        .unwrap_or_else(|| panic!("has_more missing: {}", text(&r)));
    (msgs, more)
}

both!(thread_replies_count_and_list, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "threads", json!({})).await;
    join_ok(&bob, &room).await;
    let root = send(&alice, &room, "what shall we eat?").await;
    let rid = s(&root["id"]);
    let other = send(&alice, &room, "unrelated").await;
    let mut aws = alice.connect().await;
    let mut bws = bob.connect().await;

    // A reply over REST: the reply carries thread_root, the root gets reply_count
    // and a live message_updated.
    let r = send_raw(
        &bob,
        &room,
        json!({"body": "pizza", "thread_root": rid, "client_id": "t-1"}),
    )
    .await;
    ok(&r, "thread reply over REST");
    let r1 = r.body;
    assert_eq!(r1["thread_root"], rid.as_str());
    assert_eq!(r1["reply_count"], 0);
    let (_, ev) = until(&mut aws, |v| is_msg_id(v, &s(&r1["id"]))).await;
    assert_eq!(ev["message"]["thread_root"], rid.as_str());
    let (_, up) = until(&mut aws, |v| touches(v, &rid)).await;
    assert_eq!(up["type"], "message_updated", "{up}");
    assert_eq!(up["message"]["reply_count"], 1, "{up}");
    assert_eq!(up["pos"], up["message"]["pos"]);
    assert!(
        int(&up["pos"]) > int(&root["pos"]),
        "a reply_count change takes a new pos"
    );

    // A reply over the gateway.
    let mut f = send_frame(&room, "sushi");
    f["thread_root"] = json!(rid);
    let (reply, _) = call(&mut bws, f).await;
    reply_ok(&reply, "thread reply over the gateway");
    let r2 = reply["data"].clone();
    assert_eq!(r2["thread_root"], rid.as_str());
    let (_, up) = until(&mut aws, |v| {
        touches(v, &rid) && v["type"] == "message_updated"
    })
    .await;
    assert_eq!(up["message"]["reply_count"], 2, "{up}");

    // Answering a reply stays in the root's thread.
    let r = send_raw(
        &alice,
        &room,
        json!({"body": "both!", "thread_root": r2["id"], "reply_to": r2["id"]}),
    )
    .await;
    ok(&r, "reply to a reply");
    let r3 = r.body;
    assert_eq!(r3["reply_to"], r2["id"]);

    let now = message(&bob, &rid).await;
    assert_eq!(now["reply_count"], 3, "{now}");
    assert_eq!(message(&bob, &s(&other["id"])).await["reply_count"], 0);

    // The thread: root first, then the replies in seq order.
    let (msgs, more) = thread(&bob, &rid, "").await;
    assert_eq!(
        ids(&msgs),
        vec![rid.clone(), s(&r1["id"]), s(&r2["id"]), s(&r3["id"])],
        "thread listing"
    );
    assert!(!more);
    assert_eq!(msgs[0]["reply_count"], 3);
    assert!(msgs[1..].iter().all(|m| m["thread_root"] == rid.as_str()));

    // Paging: limit counts replies; after_seq continues.
    let (page1, more) = thread(&bob, &rid, "?limit=2").await;
    assert_eq!(
        ids(&page1),
        vec![rid.clone(), s(&r1["id"]), s(&r2["id"])],
        "first page: root and two replies"
    );
    assert!(more, "has_more on the first page");
    let (page2, more) = thread(&bob, &rid, &format!("?limit=2&after_seq={}", r2["seq"])).await;
    let rest: Vec<String> = ids(&page2).into_iter().filter(|i| *i != rid).collect();
    assert_eq!(rest, vec![s(&r3["id"])], "second page");
    assert!(!more);

    // Bad paging input.
    let r = bob
        .get(&format!("/api/v1/messages/{rid}/thread?limit=0"))
        .await;
    invalid(&r, "limit", "thread limit=0");
    let r = bob
        .get(&format!("/api/v1/messages/{rid}/thread?limit=abc"))
        .await;
    err(&r, "invalid", "thread limit=abc");

    // A message without replies is a thread of one.
    let (msgs, more) = thread(&bob, &s(&other["id"]), "").await;
    assert_eq!(ids(&msgs), vec![s(&other["id"])]);
    assert!(!more);
});

both!(thread_root_and_reply_to_must_be_in_the_same_room, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "here", json!({})).await;
    let elsewhere = new_room(&alice, "elsewhere", json!({})).await;
    let secret = new_room(&bob, "secret", json!({"kind": "private"})).await;
    join_ok(&bob, &room).await;
    let local = send(&alice, &room, "local root").await;
    let foreign = send(&alice, &elsewhere, "foreign root").await;
    let hidden = send(&bob, &secret, "hidden").await;
    let mut aws = alice.connect().await;
    let seq_before = last_seq(&alice, &room).await;

    for (field, id, what) in [
        ("thread_root", s(&foreign["id"]), "another room"),
        (
            "thread_root",
            s(&hidden["id"]),
            "a private room the sender is not in",
        ),
        ("thread_root", "nope".to_string(), "an unknown message"),
        ("reply_to", s(&foreign["id"]), "another room"),
        (
            "reply_to",
            s(&hidden["id"]),
            "a private room the sender is not in",
        ),
        ("reply_to", "nope".to_string(), "an unknown message"),
    ] {
        let mut body = json!({"body": "misplaced", "client_id": format!("c-{}", uuid_like())});
        body[field] = json!(id);
        let r = send_raw(&alice, &room, body).await;
        invalid(&r, field, &format!("REST {field} in {what}"));
        let mut f = send_frame(&room, "misplaced");
        f[field] = json!(id);
        let (reply, _) = call(&mut aws, f).await;
        reply_err(&reply, "invalid", &format!("gateway {field} in {what}"));
    }

    // Nothing changed: no message stored, no reply counted, no event sent.
    assert_eq!(last_seq(&alice, &room).await, seq_before);
    assert_eq!(message(&alice, &s(&foreign["id"])).await["reply_count"], 0);
    assert_eq!(message(&bob, &s(&hidden["id"])).await["reply_count"], 0);
    assert_eq!(
        message(&alice, &s(&foreign["id"])).await["pos"],
        foreign["pos"]
    );
    let (msgs, _) = thread(&alice, &s(&foreign["id"]), "").await;
    assert_eq!(msgs.len(), 1, "no reply landed in the foreign thread");
    let ok_reply = send_raw(
        &alice,
        &room,
        json!({"body": "fine", "thread_root": local["id"]}),
    )
    .await;
    ok(&ok_reply, "a valid thread reply");
    let (before, ev) = until(&mut aws, |v| v["type"] == "message").await;
    assert_eq!(
        ev["message"]["id"], ok_reply.body["id"],
        "the first new message after the refused sends is the valid one"
    );
    assert!(
        !before
            .iter()
            .any(|v| v["type"] == "message_updated" || v["type"] == "message"),
        "refused sends produced events: {}",
        short(&before)
    );
    assert_eq!(int(&ok_reply.body["seq"]), seq_before + 1);
});

both!(reading_threads_needs_read_access, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let guest = env.guest("visitor").await;
    let private = new_room(&alice, "secret", json!({"kind": "private"})).await;
    invite(&alice, &private, &bob).await;
    let root = send(&alice, &private, "private root").await;
    let rid = s(&root["id"]);
    let r = send_raw(
        &bob,
        &private,
        json!({"body": "private reply", "thread_root": rid}),
    )
    .await;
    ok(&r, "reply");
    let reply_id = s(&r.body["id"]);

    for id in [&rid, &reply_id] {
        let r = carol.get(&format!("/api/v1/messages/{id}/thread")).await;
        err(&r, "not_found", "outsider reading a private thread");
        assert!(
            !text(&r).contains("private"),
            "the error leaks content: {}",
            text(&r)
        );
    }
    let r = carol.get("/api/v1/messages/nope/thread").await;
    err(&r, "not_found", "thread of an unknown message");

    // A public room without guests: members and account non-members read, guests
    // do not.
    let public = new_room(&alice, "public", json!({"guests_allowed": false})).await;
    let proot = send(&alice, &public, "public root").await;
    let pid = s(&proot["id"]);
    let r = guest.get(&format!("/api/v1/messages/{pid}/thread")).await;
    err(
        &r,
        "forbidden",
        "guest reading a thread in a room without guests",
    );
    let r = carol.get(&format!("/api/v1/messages/{pid}/thread")).await;
    ok(&r, "account reading a thread of a public room");

    // Non-members cannot reply in a thread.
    let r = send_raw(
        &carol,
        &public,
        json!({"body": "me too", "thread_root": pid}),
    )
    .await;
    err(&r, "forbidden", "non-member replying in a thread");
    assert_eq!(message(&alice, &pid).await["reply_count"], 0);
    assert_eq!(message(&alice, &rid).await["reply_count"], 1);
});

both!(concurrent_replies_are_all_counted, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "busy thread", json!({})).await;
    join_ok(&bob, &room).await;
    let root = send(&alice, &room, "vote here").await;
    let rid = s(&root["id"]);
    let mut aws = alice.connect().await;
    let results = futures_util::future::join_all((0..10).map(|i| {
        let who = if i % 2 == 0 { &alice } else { &bob };
        let room = room.clone();
        let rid = rid.clone();
        async move {
            send_raw(
                who,
                &room,
                json!({"body": format!("vote {i}"), "thread_root": rid, "client_id": format!("v-{i}")}),
            )
            .await
        }
    }))
    .await;
    for r in &results {
        ok(r, "concurrent reply");
    }
    assert_eq!(message(&bob, &rid).await["reply_count"], 10);
    let (msgs, more) = thread(&bob, &rid, "").await;
    assert_eq!(msgs.len(), 11, "root and ten replies");
    assert!(!more);
    // The root's live updates end at reply_count 10, in pos order.
    let mut last_pos = 0;
    loop {
        let (_, ev) = until(&mut aws, |v| touches(v, &rid)).await;
        let pos = int(&ev["pos"]);
        assert!(pos > last_pos, "root updates out of pos order");
        last_pos = pos;
        if ev["message"]["reply_count"] == 10 {
            break;
        }
    }
});
