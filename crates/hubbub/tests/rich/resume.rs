//! SPEC §8 guarantee 3 with rich changes: resume returns reaction changes, pins and
//! reply_count changes, each message once, in pos order, with `me` for the caller.

use serde_json::{Value, json};

use crate::support::*;

both!(
    resume_includes_reactions_pins_and_threads_once_with_me,
    |env| {
        let (_root, alice, bob) = trio(&env).await;
        let room = new_room(&alice, "resume", json!({})).await;
        join_ok(&bob, &room).await;
        let m1 = send(&alice, &room, "react to me").await;
        let m2 = send(&bob, &room, "pin me").await;
        let m3 = send(&alice, &room, "thread root").await;
        let m4 = send(&alice, &room, "react and unreact").await;
        let untouched = send(&alice, &room, "untouched").await;
        let id = |m: &Value| s(&m["id"]);

        let a1 = alice.connect().await;
        let last_pos = int(&ready_room(&a1, &room)["pos"]);
        drop(a1);

        // While alice is away: reactions (hers and bob's), a pin, a thread reply,
        // a reaction added and removed again, several changes to one message.
        ok(&react(&bob, &id(&m1), "👍").await, "bob 👍");
        ok(&react(&alice, &id(&m1), "🎉").await, "alice 🎉 over REST");
        ok(&react(&bob, &id(&m1), "🎉").await, "bob 🎉");
        let r = alice
            .put(&format!("/api/v1/messages/{}/pin", id(&m2)), json!({}))
            .await;
        ok(&r, "pin");
        let r = send_raw(
            &bob,
            &room,
            json!({"body": "a reply", "thread_root": id(&m3)}),
        )
        .await;
        ok(&r, "thread reply");
        let reply = r.body;
        ok(&react(&bob, &id(&m4), "😂").await, "bob 😂");
        ok(&unreact(&bob, &id(&m4), "😂").await, "bob un-😂");

        let mut a2 = alice.connect().await;
        let (rep, _) = call(
            &mut a2,
            json!({"type": "resume", "rooms": {room.clone(): last_pos}}),
        )
        .await;
        reply_ok(&rep, "resume");
        let entry = rep["data"]["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["room_id"] == room.as_str())
            .unwrap_or_else(|| panic!("room missing from resume: {rep}"))
            .clone();
        assert_eq!(entry["truncated"], false);
        let msgs = entry["messages"].as_array().unwrap().clone();
        let got = ids(&msgs);
        let mut want = vec![id(&m1), id(&m2), id(&m3), id(&reply), id(&m4)];
        want.sort();
        assert_eq!(
            sorted(got.clone()),
            want,
            "each changed message once, nothing else"
        );
        assert!(!got.contains(&id(&untouched)));
        let poss: Vec<i64> = msgs.iter().map(|m| int(&m["pos"])).collect();
        assert!(poss.windows(2).all(|w| w[0] < w[1]), "pos order: {poss:?}");
        assert!(poss.iter().all(|p| *p > last_pos));
        assert_eq!(
            int(&entry["pos"]),
            *poss.iter().max().unwrap(),
            "room pos: {entry}"
        );

        let find = |i: &str| msgs.iter().find(|m| m["id"] == i).unwrap().clone();
        let r1 = find(&id(&m1));
        assert_eq!(
            reaction(&r1, "👍"),
            Some(&json!({"emoji": "👍", "count": 1, "me": false}))
        );
        assert_eq!(
            reaction(&r1, "🎉"),
            Some(&json!({"emoji": "🎉", "count": 2, "me": true})),
            "`me` is computed for the resuming caller: {r1}"
        );
        assert_eq!(find(&id(&m2))["pinned"], true);
        assert_eq!(find(&id(&m3))["reply_count"], 1);
        assert_eq!(find(&id(&reply))["thread_root"], m3["id"]);
        assert_eq!(find(&id(&m4))["reactions"], json!([]));

        // Live changes after the snapshot follow, once.
        let snapshot = int(&entry["pos"]);
        ok(&react(&bob, &id(&untouched), "👀").await, "bob 👀");
        let (before, ev) = until(&mut a2, |v| touches(v, &id(&untouched))).await;
        assert!(
            !before
                .iter()
                .any(|v| v["type"] == "message_updated" || v["type"] == "message"),
            "replayed changes after the resume reply: {}",
            short(&before)
        );
        assert!(int(&ev["pos"]) > snapshot);
        assert_eq!(
            ev["reaction_change"],
            json!({"user_id": bob.id(), "emoji": "👀", "add": true})
        );

        // Resuming again from the snapshot gives that one change, `me` for bob.
        let mut b = bob.connect().await;
        let (rep, _) = call(
            &mut b,
            json!({"type": "resume", "rooms": {room.clone(): snapshot}}),
        )
        .await;
        reply_ok(&rep, "bob resumes");
        let msgs = rep["data"]["rooms"][0]["messages"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(ids(&msgs), vec![id(&untouched)]);
        assert_eq!(
            msgs[0]["reactions"],
            json!([{"emoji": "👀", "count": 1, "me": true}])
        );
    }
);

both!(resume_covers_dms_and_attachments, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let r = alice
        .post("/api/v1/dms", json!({"user_ids": [bob.id()]}))
        .await;
    ok(&r, "DM");
    let dm = s(&r.body["id"]);
    let first = send(&alice, &dm, "hello").await;
    let b1 = bob.connect().await;
    let last_pos = int(&ready_room(&b1, &dm)["pos"]);
    assert_eq!(last_pos, int(&first["pos"]));
    drop(b1);

    let a = upload_ok(&alice, "dm.png", "image/png", png(9, 9)).await;
    let r = send_raw(
        &alice,
        &dm,
        json!({"body": "", "attachment_ids": [a["id"]]}),
    )
    .await;
    ok(&r, "send attachment in the DM");
    let pic = r.body;
    ok(
        &react(&alice, &s(&first["id"]), "👋").await,
        "react in the DM",
    );

    let mut b2 = bob.connect().await;
    let (rep, _) = call(
        &mut b2,
        json!({"type": "resume", "rooms": {dm.clone(): last_pos}}),
    )
    .await;
    reply_ok(&rep, "resume");
    let msgs = rep["data"]["rooms"][0]["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        sorted(ids(&msgs)),
        sorted(vec![s(&first["id"]), s(&pic["id"])]),
        "resume: {rep}"
    );
    let p = msgs.iter().find(|m| m["id"] == pic["id"]).unwrap();
    assert_eq!(p["attachments"], json!([a.clone()]));
    let f = msgs.iter().find(|m| m["id"] == first["id"]).unwrap();
    assert_eq!(
        f["reactions"],
        json!([{"emoji": "👋", "count": 1, "me": false}])
    );
    let r = bob.get(&s(&a["url"])).await;
    ok(&r, "the DM partner fetches the file");
});
