//! SPEC §6 mentions, §7 `POST /rooms/{id}/read`, `PUT /rooms/{id}/notifications`,
//! §8 `notification`.

use serde_json::json;

use crate::support::*;

async fn counts(api: &Api, room: &str) -> (i64, i64) {
    let e = room_entry(api, room)
        .await
        .unwrap_or_else(|| panic!("room {room} not in the room list"));
    (int(&e["unread_count"]), int(&e["mention_count"]))
}

async fn set_level(api: &Api, room: &str, level: &str) -> Resp {
    api.put(
        &format!("/api/v1/rooms/{room}/notifications"),
        json!({ "level": level }),
    )
    .await
}

fn mention_span(id: &str) -> String {
    format!("<span class=\"mention\" data-mention=\"{id}\">")
}

both!(mentioning_a_member_highlights_notifies_and_counts, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let room = new_room(&alice, "mentions", json!({})).await;
    join_ok(&bob, &room).await;
    let elsewhere = new_room(&carol, "carol's", json!({})).await;
    join_ok(&alice, &elsewhere).await;
    let mut aws = alice.connect().await;
    let mut bws = bob.connect().await;
    let mut cws = carol.connect().await;

    // @bob (case-insensitive); @carol is not a member here; an e-mail address is no
    // mention; raw HTML cannot forge a mention.
    let body = "hey @BOB, ask @carol or mail x@alice.example \
                <span class=\"mention\" data-mention=\"x\">forged</span>";
    let m = send(&alice, &room, body).await;
    let mid = s(&m["id"]);
    assert_eq!(m["mentions"], json!([bob.id()]), "mentions: {m}");
    let html = s(&m["html"]);
    assert!(
        html.contains(&format!("{}@BOB</span>", mention_span(&bob.id()))),
        "the mention is highlighted: {html}"
    );
    assert_eq!(
        html.matches("<span").count(),
        1,
        "only the real mention is a span (no forged one, none for non-members): {html}"
    );
    assert!(!html.contains(&mention_span(&carol.id())), "{html}");

    // bob is notified; the room's mention counter counts it.
    let (_, n) = until(&mut bws, is_notification).await;
    assert_eq!(n["room_id"], room.as_str(), "{n}");
    assert_eq!(n["message"]["id"], mid.as_str(), "{n}");
    assert_eq!(n["message"]["mentions"], json!([bob.id()]));
    assert_eq!(counts(&bob, &room).await, (1, 1));
    assert_eq!(
        counts(&alice, &room).await.1,
        0,
        "the author is not mentioned"
    );

    // Reading past the mention resets the counter; reading before it does not.
    let r = bob
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            json!({"seq": int(&m["seq"]) - 1}),
        )
        .await;
    ok(&r, "read before the mention");
    assert_eq!(counts(&bob, &room).await.1, 1);
    let r = bob
        .post(
            &format!("/api/v1/rooms/{room}/read"),
            json!({"seq": m["seq"]}),
        )
        .await;
    ok(&r, "read past the mention");
    assert_eq!(counts(&bob, &room).await, (0, 0));

    // carol (not a member of that room) heard nothing: her first notification is
    // the one for a mention in her own room.
    let m2 = send(&alice, &elsewhere, "@carol welcome back").await;
    assert_eq!(m2["mentions"], json!([carol.id()]));
    let (_, n) = until(&mut cws, is_notification).await;
    assert_eq!(
        n["message"]["id"], m2["id"],
        "carol was notified about a room she is not in: {n}"
    );
    assert_eq!(counts(&carol, &elsewhere).await, (1, 1));
    // Nor was the author notified of her own message.
    let m3 = send(&bob, &room, "@alice noted").await;
    let (_, n) = until(&mut aws, is_notification).await;
    assert_eq!(n["message"]["id"], m3["id"], "{n}");

    // A newer mention counts again.
    send(&alice, &room, "@bob one more").await;
    assert_eq!(counts(&bob, &room).await, (1, 1));

    // An edit recomputes mentions and their highlight.
    let plain = send(&alice, &room, "no one yet").await;
    assert_eq!(plain["mentions"], json!([]));
    let r = alice
        .patch(
            &format!("/api/v1/messages/{}", s(&plain["id"])),
            json!({"body": "now @bob"}),
        )
        .await;
    ok(&r, "edit in a mention");
    assert_eq!(r.body["mentions"], json!([bob.id()]), "{}", r.body);
    assert!(
        s(&r.body["html"]).contains(&mention_span(&bob.id())),
        "{}",
        r.body["html"]
    );

    // Mentions inside a fenced code block are code, not mentions.
    let code = send(&alice, &room, "```\n@bob\n```").await;
    assert_eq!(code["mentions"], json!([]), "{code}");
    assert!(!s(&code["html"]).contains("class=\"mention\""));
});

both!(here_reaches_members_who_are_not_offline, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let room = new_room(&alice, "here", json!({})).await;
    join_ok(&bob, &room).await;
    join_ok(&carol, &room).await;
    let dave = env.register("dave", PW).await;
    join_ok(&dave, &room).await;
    // alice and bob are online, dave is away (not offline); carol never connected.
    let mut aws = alice.connect().await;
    let _bws = bob.connect().await;
    let mut dws = dave.connect().await;
    let (reply, _) = call(&mut dws, json!({"type": "presence", "status": "away"})).await;
    reply_ok(&reply, "dave goes away");

    // @here works for plain members too.
    let m = send(&bob, &room, "@here lunch?").await;
    let mentions: Vec<String> = m["mentions"].as_array().unwrap().iter().map(s).collect();
    assert!(mentions.contains(&alice.id()), "online alice: {m}");
    assert!(
        mentions.contains(&dave.id()),
        "away dave is not offline: {m}"
    );
    assert!(!mentions.contains(&carol.id()), "offline carol: {m}");
    assert!(
        s(&m["html"]).contains(&format!("{}@here</span>", mention_span("here"))),
        "@here is highlighted: {}",
        m["html"]
    );
    let (_, n) = until(&mut aws, is_notification).await;
    assert_eq!(n["message"]["id"], m["id"]);
    assert_eq!(counts(&alice, &room).await.1, 1);
    assert_eq!(
        counts(&carol, &room).await,
        (1, 0),
        "carol: unread, not mentioned"
    );
});

both!(room_mentions_need_a_moderator, |env| {
    let (root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let room = new_room(&alice, "announcements", json!({})).await;
    join_ok(&bob, &room).await;
    join_ok(&carol, &room).await;
    join_ok(&root, &room).await;
    let mut aws = alice.connect().await;
    let mut cws = carol.connect().await;

    // A plain member: @room is plain text — no mentions, no highlight, nobody told.
    let plain = send(&bob, &room, "@room look at this").await;
    assert_eq!(plain["mentions"], json!([]), "member's @room: {plain}");
    assert!(
        !s(&plain["html"]).contains("<span"),
        "member's @room is not highlighted: {}",
        plain["html"]
    );
    let mut f = send_frame(&room, "@room over the gateway");
    f["client_id"] = json!("room-gw");
    let mut bws = bob.connect().await;
    let (reply, _) = call(&mut bws, f).await;
    reply_ok(&reply, "gateway send");
    assert_eq!(reply["data"]["mentions"], json!([]));
    assert_eq!(counts(&carol, &room).await, (2, 0));
    assert_eq!(counts(&alice, &room).await.1, 0);

    // The owner: @room is everyone (offline members included).
    let owner = send(&alice, &room, "@room meeting at 3").await;
    let got = sorted(
        owner["mentions"]
            .as_array()
            .unwrap()
            .iter()
            .map(s)
            .collect(),
    );
    for who in [&bob, &carol, &root] {
        assert!(
            got.contains(&who.id()),
            "owner's @room misses {}: {owner}",
            who.id()
        );
    }
    assert!(
        s(&owner["html"]).contains(&format!("{}@room</span>", mention_span("room"))),
        "{}",
        owner["html"]
    );
    // carol's first notification is the owner's, not the member's @room.
    let (_, n) = until(&mut cws, is_notification).await;
    assert_eq!(n["message"]["id"], owner["id"], "{n}");
    assert_eq!(counts(&carol, &room).await, (3, 1));

    // A server admin (acting as owner) may too.
    let admin = send(&root, &room, "@room maintenance tonight").await;
    let got: Vec<String> = admin["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    for who in [&alice, &bob, &carol] {
        assert!(
            got.contains(&who.id()),
            "admin's @room misses {}: {admin}",
            who.id()
        );
    }
    let (_, n) = until(&mut aws, is_notification).await;
    assert_eq!(
        n["message"]["id"], admin["id"],
        "alice's first notification must be the admin's @room: {n}"
    );
    assert_eq!(counts(&carol, &room).await, (4, 2));
});

both!(notification_levels, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "levels", json!({})).await;
    join_ok(&bob, &room).await;
    let mut bws = bob.connect().await;
    let entry = room_entry(&bob, &room).await.unwrap();
    assert_eq!(entry["notification_level"], "mentions", "default: {entry}");

    // Bad levels are refused and change nothing.
    for bad in [
        json!({"level": "loud"}),
        json!({"level": ""}),
        json!({"level": "ALL"}),
        json!({"level": 3}),
        json!({}),
    ] {
        let r = bob
            .put(&format!("/api/v1/rooms/{room}/notifications"), bad.clone())
            .await;
        err(&r, "invalid", &format!("level {bad}"));
        if bad.get("level").is_some_and(|l| l.is_string()) {
            assert_eq!(r.body["error"]["field"], "level", "{}", text(&r));
        }
    }
    assert_eq!(
        room_entry(&bob, &room).await.unwrap()["notification_level"],
        "mentions"
    );

    // none: a mention is counted but not notified.
    let r = set_level(&bob, &room, "none").await;
    assert_eq!(r.status, 204, "set level none: {}", text(&r));
    assert_eq!(
        room_entry(&bob, &room).await.unwrap()["notification_level"],
        "none"
    );
    let muted = send(&alice, &room, "@bob are you there?").await;
    assert_eq!(muted["mentions"], json!([bob.id()]));
    assert_eq!(counts(&bob, &room).await.1, 1, "counts are still kept");

    // all: every message notifies (and that is the first notification bob gets).
    let r = set_level(&bob, &room, "all").await;
    assert_eq!(r.status, 204, "set level all: {}", text(&r));
    let plain = send(&alice, &room, "just chatting").await;
    let (_, n) = until(&mut bws, is_notification).await;
    assert_eq!(
        n["message"]["id"], plain["id"],
        "level none still notified, or level all did not: {n}"
    );
    assert_eq!(n["room_id"], room.as_str());
    // Not for one's own messages.
    let own = send(&bob, &room, "my own").await;
    let next = send(&alice, &room, "another").await;
    let (_, n) = until(&mut bws, is_notification).await;
    assert_eq!(
        n["message"]["id"], next["id"],
        "own message {} notified",
        own["id"]
    );

    // mentions: plain messages are quiet again, mentions notify.
    let r = set_level(&bob, &room, "mentions").await;
    assert_eq!(r.status, 204);
    let quiet = send(&alice, &room, "quiet").await;
    let loud = send(&alice, &room, "@bob loud").await;
    let (_, n) = until(&mut bws, is_notification).await;
    assert_eq!(
        n["message"]["id"], loud["id"],
        "plain message {} notified at level mentions",
        quiet["id"]
    );

    // Only members set a level; private rooms stay invisible.
    let carol = env.register("carol", PW).await;
    let r = set_level(&carol, &room, "all").await;
    err(&r, "forbidden", "non-member setting a level");
    let private = new_room(&alice, "private", json!({"kind": "private"})).await;
    let r = set_level(&carol, &private, "all").await;
    err(
        &r,
        "not_found",
        "outsider setting a level in a private room",
    );
    let r = set_level(&carol, "nope", "all").await;
    err(&r, "not_found", "unknown room");
});

both!(guests_are_mentioned_by_name_too, |env| {
    let (_root, alice, _bob) = trio(&env).await;
    let guest = env.guest("visitor").await;
    let general = alice.general().await;
    let mut gws = guest.connect().await;
    let m = send(&alice, &general, "welcome @visitor!").await;
    assert_eq!(m["mentions"], json!([guest.id()]), "{m}");
    assert!(
        s(&m["html"]).contains(&mention_span(&guest.id())),
        "{}",
        m["html"]
    );
    let (_, n) = until(&mut gws, is_notification).await;
    assert_eq!(n["message"]["id"], m["id"]);
    assert_eq!(counts(&guest, &general).await.1, 1);
});
