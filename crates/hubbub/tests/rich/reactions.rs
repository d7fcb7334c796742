//! SPEC §6 reactions, §7 `PUT/DELETE /messages/{id}/reactions/{emoji}`, §8 `react`.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::*;

fn users_of(list: &Value, emoji: &str) -> Vec<String> {
    let entry = list["reactions"]
        .as_array()
        .unwrap_or_else(|| panic!("no reactions array: {list}"))
        .iter()
        .find(|r| r["emoji"] == emoji)
        .unwrap_or_else(|| panic!("no {emoji} in {list}"));
    sorted(
        entry["users"]
            .as_array()
            .unwrap_or_else(|| panic!("no users for {emoji}: {entry}"))
            .iter()
            .map(|u| s(&u["id"]))
            .collect(),
    )
}

both!(rest_reactions_count_once_per_user_and_emoji, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "reactions", json!({})).await;
    join_ok(&bob, &room).await;
    let m = send(&alice, &room, "react to me").await;
    let id = s(&m["id"]);
    let pos0 = int(&m["pos"]);

    let r = react(&bob, &id, "👍").await;
    ok(&r, "bob reacts 👍");
    assert_eq!(r.body["id"], id.as_str(), "answers the message: {}", r.body);
    assert_eq!(
        r.body["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": true}]),
        "as bob sees it"
    );
    let pos1 = int(&r.body["pos"]);
    assert!(
        pos1 > pos0,
        "a reaction change takes a new pos: {pos1} <= {pos0}"
    );

    // Reacting twice is one reaction and no change.
    let r = react(&bob, &id, "👍").await;
    ok(&r, "bob reacts 👍 again");
    assert_eq!(
        r.body["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": true}]),
        "a repeated reaction counts once"
    );
    assert_eq!(
        int(&r.body["pos"]),
        pos1,
        "a repeated reaction changes nothing"
    );

    // `me` is computed for the caller.
    let a = message(&alice, &id).await;
    assert_eq!(
        a["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": false}]),
        "as alice sees it"
    );

    // Shortcodes name the same emoji.
    let r = react(&alice, &id, ":thumbsup:").await;
    ok(&r, "alice reacts :thumbsup:");
    assert_eq!(
        reaction(&r.body, "👍"),
        Some(&json!({"emoji": "👍", "count": 2, "me": true})),
        ":thumbsup: is 👍: {}",
        r.body
    );
    let r = react(&alice, &id, ":rocket:").await;
    ok(&r, "alice reacts :rocket:");
    assert_eq!(
        reaction(&r.body, "🚀"),
        Some(&json!({"emoji": "🚀", "count": 1, "me": true})),
        ":rocket: is 🚀: {}",
        r.body
    );
    // Modified and joined emoji are emoji too.
    for e in ["👍🏽", "👨‍👩‍👧‍👦"] {
        let r = react(&bob, &id, e).await;
        ok(&r, &format!("bob reacts {e}"));
        assert_eq!(
            reaction(&r.body, e),
            Some(&json!({"emoji": e, "count": 1, "me": true})),
            "{e}: {}",
            r.body
        );
    }

    // Who reacted.
    let r = alice.get(&format!("/api/v1/messages/{id}/reactions")).await;
    ok(&r, "GET reactions");
    assert_eq!(users_of(&r.body, "👍"), sorted(vec![alice.id(), bob.id()]));
    assert_eq!(users_of(&r.body, "🚀"), vec![alice.id()]);
    assert_eq!(users_of(&r.body, "👍🏽"), vec![bob.id()]);
    assert_eq!(
        r.body["reactions"].as_array().unwrap().len(),
        4,
        "{}",
        r.body
    );

    // History shows the same, with `me` for the reader.
    let h = all_messages(&bob, &room).await;
    let hm = h.iter().find(|x| x["id"] == id.as_str()).unwrap();
    assert_eq!(
        reaction(hm, "👍"),
        Some(&json!({"emoji": "👍", "count": 2, "me": true}))
    );
    assert_eq!(
        reaction(hm, "🚀"),
        Some(&json!({"emoji": "🚀", "count": 1, "me": false}))
    );

    // Un-reacting.
    let r = unreact(&bob, &id, "👍").await;
    ok(&r, "bob un-reacts 👍");
    assert_eq!(
        reaction(&r.body, "👍"),
        Some(&json!({"emoji": "👍", "count": 1, "me": false}))
    );
    let pos2 = int(&r.body["pos"]);
    assert!(pos2 > pos1);
    let r = unreact(&bob, &id, "👍").await;
    ok(&r, "bob un-reacts 👍 again");
    assert_eq!(
        reaction(&r.body, "👍"),
        Some(&json!({"emoji": "👍", "count": 1, "me": false})),
        "removing a reaction one does not have changes nothing"
    );
    let r = unreact(&alice, &id, ":+1:").await;
    ok(&r, "alice un-reacts :+1:");
    assert_eq!(
        reaction(&r.body, "👍"),
        None,
        "no reactors, no entry: {}",
        r.body
    );
    let a = message(&alice, &id).await;
    assert_eq!(a["reactions"].as_array().unwrap().len(), 3, "{a}");
    let r = alice.get(&format!("/api/v1/messages/{id}/reactions")).await;
    ok(&r, "GET reactions");
    assert!(
        !r.body["reactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["emoji"] == "👍"),
        "{}",
        r.body
    );
});

both!(gateway_react_and_live_reaction_events, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "live", json!({})).await;
    join_ok(&bob, &room).await;
    let m = send(&alice, &room, "party").await;
    let id = s(&m["id"]);
    let mut aws = alice.connect().await;
    let mut bws = bob.connect().await;

    let (reply, _) = call(&mut bws, react_frame(&id, "🎉", true)).await;
    reply_ok(&reply, "react over the gateway");
    assert!(reply["data"].is_null(), "react reply data is null: {reply}");
    let mut add_pos = 0;
    for (who, ws) in [("alice", &mut aws), ("bob", &mut bws)] {
        let (_, ev) = until(ws, |v| touches(v, &id)).await;
        assert_eq!(ev["type"], "message_updated", "{who}: {ev}");
        assert_eq!(
            ev["reaction_change"],
            json!({"user_id": bob.id(), "emoji": "🎉", "add": true}),
            "{who}: {ev}"
        );
        assert_eq!(
            ev["message"]["reactions"],
            json!([{"emoji": "🎉", "count": 1, "me": false}]),
            "live events carry me:false for everyone ({who})"
        );
        assert_eq!(ev["pos"], ev["message"]["pos"], "{who}: {ev}");
        assert!(int(&ev["pos"]) > int(&m["pos"]), "{who}: {ev}");
        add_pos = int(&ev["pos"]);
    }

    // Reacting twice: no change, no event. Then an un-react by shortcode: the next
    // change alice sees for this message is that removal.
    let (reply, _) = call(&mut bws, react_frame(&id, "🎉", true)).await;
    reply_ok(&reply, "react twice");
    let (reply, _) = call(&mut bws, react_frame(&id, ":tada:", false)).await;
    reply_ok(&reply, "un-react :tada:");
    assert!(reply["data"].is_null());
    let (_, ev) = until(&mut aws, |v| touches(v, &id)).await;
    assert_eq!(
        ev["reaction_change"],
        json!({"user_id": bob.id(), "emoji": "🎉", "add": false}),
        "expected the removal (a repeated add must not produce an event): {ev}"
    );
    assert_eq!(ev["message"]["reactions"], json!([]));
    assert!(int(&ev["pos"]) > add_pos);

    // A REST reaction reaches the reactor's own connections too, with me:false.
    let r = react(&alice, &id, "❤️").await;
    ok(&r, "alice reacts over REST");
    let (_, ev) = until(&mut aws, |v| touches(v, &id)).await;
    assert_eq!(
        ev["reaction_change"],
        json!({"user_id": alice.id(), "emoji": "❤️", "add": true}),
        "{ev}"
    );
    assert_eq!(
        ev["message"]["reactions"],
        json!([{"emoji": "❤️", "count": 1, "me": false}])
    );
    assert_eq!(ev["pos"], r.body["pos"]);
});

both!(bad_emoji_is_invalid_and_changes_nothing, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "bad emoji", json!({})).await;
    join_ok(&bob, &room).await;
    let m = send(&alice, &room, "careful").await;
    let id = s(&m["id"]);
    let mut aws = alice.connect().await;
    let mut bws = bob.connect().await;

    let bad: Vec<String> = vec![
        "abc".into(),
        "x".repeat(40),
        ":nope-not-one:".into(),
        ":rocket".into(),
        "rocket:".into(),
        "::".into(),
        "<script>".into(),
        "%".into(),
        "👍 ".into(),
        " 👍".into(),
        "👍\n".into(),
        "👍\t".into(),
        "👍\u{a0}".into(),
        "🚀🚀".into(),
        "👍".repeat(9), // 36 bytes
        "👨‍👩‍👧‍👦👨‍👩‍👧‍👦".into(),  // 50 bytes
    ];
    for e in &bad {
        let r = react(&bob, &id, e).await;
        invalid(&r, "emoji", &format!("PUT reaction {e:?}"));
        let r = unreact(&bob, &id, e).await;
        invalid(&r, "emoji", &format!("DELETE reaction {e:?}"));
        let (reply, _) = call(&mut bws, react_frame(&id, e, true)).await;
        reply_err(&reply, "invalid", &format!("gateway react {e:?}"));
    }
    let (reply, _) = call(&mut bws, react_frame(&id, "", true)).await;
    reply_err(&reply, "invalid", "gateway react with an empty emoji");
    for frame in [
        json!({"type": "react", "message_id": id, "emoji": "👍"}),
        json!({"type": "react", "message_id": id, "emoji": "👍", "add": "yes"}),
        json!({"type": "react", "message_id": id, "emoji": 1, "add": true}),
        json!({"type": "react", "emoji": "👍", "add": true}),
    ] {
        let (reply, _) = call(&mut bws, frame.clone()).await;
        reply_err(&reply, "invalid", &format!("malformed react frame {frame}"));
    }

    // Nothing changed.
    let now = message(&alice, &id).await;
    assert_eq!(now["reactions"], json!([]), "{now}");
    assert_eq!(now["pos"], m["pos"], "no pos taken by refused reactions");
    let r = alice.get(&format!("/api/v1/messages/{id}/reactions")).await;
    ok(&r, "GET reactions");
    assert_eq!(r.body["reactions"], json!([]));
    // No event went out: the first change alice sees is the next valid reaction.
    let r = react(&bob, &id, "👍").await;
    ok(&r, "a valid reaction");
    let (_, ev) = until(&mut aws, |v| touches(v, &id)).await;
    assert_eq!(ev["reaction_change"]["emoji"], "👍", "{ev}");
    assert_eq!(
        ev["message"]["reactions"],
        json!([{"emoji": "👍", "count": 1, "me": false}])
    );
});

both!(reacting_needs_membership, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let guest = env.guest("visitor").await;

    // A public room carol has not joined.
    let public = new_room(&alice, "public", json!({"guests_allowed": false})).await;
    join_ok(&bob, &public).await;
    let pm = send(&alice, &public, "public message").await;
    let pid = s(&pm["id"]);
    let mut cws = carol.connect().await;
    let r = react(&carol, &pid, "👍").await;
    err(&r, "forbidden", "non-member reacting in a public room");
    let r = unreact(&carol, &pid, "👍").await;
    err(&r, "forbidden", "non-member un-reacting in a public room");
    let (reply, _) = call(&mut cws, react_frame(&pid, "👍", true)).await;
    reply_err(&reply, "forbidden", "non-member reacting over the gateway");
    // A guest in a room without guests.
    let r = react(&guest, &pid, "👍").await;
    err(&r, "forbidden", "guest reacting in a room without guests");
    let r = guest
        .get(&format!("/api/v1/messages/{pid}/reactions"))
        .await;
    err(
        &r,
        "forbidden",
        "guest reading reactions in a room without guests",
    );

    // A private room: outsiders learn nothing.
    let private = new_room(&alice, "secret", json!({"kind": "private"})).await;
    invite(&alice, &private, &bob).await;
    let sm = send(&alice, &private, "private message").await;
    let sid = s(&sm["id"]);
    let r = react(&carol, &sid, "👍").await;
    err(&r, "not_found", "outsider reacting in a private room");
    let r = unreact(&carol, &sid, "👍").await;
    err(&r, "not_found", "outsider un-reacting in a private room");
    let r = carol
        .get(&format!("/api/v1/messages/{sid}/reactions"))
        .await;
    err(
        &r,
        "not_found",
        "outsider reading reactions in a private room",
    );
    let (reply, _) = call(&mut cws, react_frame(&sid, "👍", true)).await;
    reply_err(&reply, "not_found", "outsider reacting over the gateway");

    // Unknown and deleted messages.
    let r = react(&bob, "nope", "👍").await;
    err(&r, "not_found", "reacting to an unknown message");
    let r = bob.get("/api/v1/messages/nope/reactions").await;
    err(&r, "not_found", "reactions of an unknown message");
    let (reply, _) = call(&mut cws, react_frame("nope", "👍", true)).await;
    reply_err(&reply, "not_found", "gateway react to an unknown message");
    let gone = send(&bob, &public, "soon gone").await;
    let gid = s(&gone["id"]);
    let r = bob.delete(&format!("/api/v1/messages/{gid}")).await;
    ok(&r, "delete");
    let r = react(&alice, &gid, "👍").await;
    err(&r, "not_found", "reacting to a deleted message");

    // Nothing changed anywhere.
    for (id, viewer) in [(&pid, &bob), (&sid, &bob)] {
        let now = message(viewer, id).await;
        assert_eq!(now["reactions"], json!([]), "{now}");
    }
    assert_eq!(message(&bob, &pid).await["pos"], pm["pos"]);
    assert_eq!(message(&bob, &sid).await["pos"], sm["pos"]);
    let g = all_messages(&bob, &public).await;
    let g = g.iter().find(|x| x["id"] == gid.as_str()).unwrap();
    assert_eq!(g["deleted"], true);
    assert_eq!(g["reactions"], json!([]));

    // Members may react; a member of the public room reads who reacted; so may a
    // non-member of a public room (reading is open there).
    let r = react(&bob, &pid, "👍").await;
    ok(&r, "member reacts");
    let r = carol
        .get(&format!("/api/v1/messages/{pid}/reactions"))
        .await;
    ok(&r, "non-member reads reactions of a public room");
    assert_eq!(users_of(&r.body, "👍"), vec![bob.id()]);
});

both!(concurrent_reactions_count_each_user_once, |env| {
    let (_root, alice, _bob) = trio(&env).await;
    let room = new_room(&alice, "crowd", json!({})).await;
    let mut crowd = Vec::new();
    for i in 0..8 {
        let u = env.register(&format!("fan{i}"), PW).await;
        join_ok(&u, &room).await;
        crowd.push(u);
    }
    let m = send(&alice, &room, "applause please").await;
    let id = s(&m["id"]);
    // Everyone at once, each twice, with the emoji and with its shortcode.
    let results = join_all(
        crowd
            .iter()
            .flat_map(|u| ["👏", ":clap:"].map(|e| (u, e)))
            .map(|(u, e)| {
                let id = id.clone();
                async move { react(u, &id, e).await }
            }),
    )
    .await;
    for r in &results {
        ok(r, "concurrent reaction");
    }
    let now = message(&alice, &id).await;
    assert_eq!(
        now["reactions"],
        json!([{"emoji": "👏", "count": 8, "me": false}]),
        "eight people, one reaction each: {now}"
    );
    let r = alice.get(&format!("/api/v1/messages/{id}/reactions")).await;
    ok(&r, "who reacted");
    assert_eq!(
        users_of(&r.body, "👏"),
        sorted(crowd.iter().map(|u| u.id()).collect())
    );
    // Concurrent removals leave nothing.
    let results = join_all(crowd.iter().map(|u| {
        let id = id.clone();
        async move { unreact(u, &id, "👏").await }
    }))
    .await;
    for r in &results {
        ok(r, "concurrent un-reaction");
    }
    assert_eq!(message(&alice, &id).await["reactions"], json!([]));
});

both!(emoji_variants_are_one_reaction, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "hearts", json!({})).await;
    join_ok(&bob, &room).await;
    let m = send(&alice, &room, "love it").await;
    let id = s(&m["id"]);
    // U+2764 with and without the emoji presentation selector, and its shortcode.
    let r = react(&alice, &id, "\u{2764}").await;
    ok(&r, "heart without FE0F");
    let r = react(&bob, &id, "\u{2764}\u{fe0f}").await;
    ok(&r, "heart with FE0F");
    let r = react(&bob, &id, ":heart:").await;
    ok(&r, ":heart:");
    let now = message(&bob, &id).await;
    let list = now["reactions"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "one heart reaction, not several spellings: {now}"
    );
    assert_eq!(list[0]["count"], 2, "{now}");
    assert_eq!(list[0]["me"], true);
});

both!(reactions_are_refused_in_a_read_only_room, |env| {
    let (_root, alice, bob) = trio(&env).await;
    // A room whose window has passed: read-only for members (SPEC §5 time-boxed).
    let room = new_room(
        &alice,
        "yesterday's workshop",
        json!({"starts_at": "2020-01-01T00:00:00Z", "ends_at": "2021-01-01T00:00:00Z"}),
    )
    .await;
    join_ok(&bob, &room).await;
    let m = send(&alice, &room, "thanks for coming").await; // the owner may post
    let id = s(&m["id"]);
    let r = send_raw(&bob, &room, json!({"body": "me too"})).await;
    err(&r, "room_closed", "member posting in a closed room");

    let r = react(&bob, &id, "👍").await;
    err(&r, "room_closed", "member reacting in a closed room");
    let mut bws = bob.connect().await;
    let (reply, _) = call(&mut bws, react_frame(&id, "👍", true)).await;
    reply_err(
        &reply,
        "room_closed",
        "member reacting over the gateway in a closed room",
    );
    let now = message(&alice, &id).await;
    assert_eq!(
        now["reactions"],
        json!([]),
        "a reaction landed in a read-only room: {now}"
    );
    assert_eq!(now["pos"], m["pos"]);
});
