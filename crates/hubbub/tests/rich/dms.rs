//! SPEC §5 dm, §7 `POST /dms`.

use serde_json::{Value, json};

use crate::support::*;

async fn open_dm(api: &Api, others: &[&Api]) -> Resp {
    let ids: Vec<String> = others.iter().map(|a| a.id()).collect();
    api.post("/api/v1/dms", json!({ "user_ids": ids })).await
}

async fn open_dm_ok(api: &Api, others: &[&Api]) -> Value {
    let r = open_dm(api, others).await;
    ok(&r, "open DM");
    assert!(r.body["id"].is_string(), "DM answer: {}", text(&r));
    r.body
}

async fn dm_ids(api: &Api) -> Vec<String> {
    sorted(
        rooms(api)
            .await
            .iter()
            .filter(|r| r["kind"] == "dm")
            .map(|r| s(&r["id"]))
            .collect(),
    )
}

async fn member_ids(api: &Api, room: &str) -> Vec<String> {
    let r = api.get(&format!("/api/v1/rooms/{room}/members")).await;
    ok(&r, "members");
    sorted(
        r.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| s(&m["user"]["id"]))
            .collect(),
    )
}

both!(dms_are_found_or_created_per_set_of_people, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let dave = env.register("dave", PW).await;
    let mut bws = bob.connect().await;

    // alice opens a DM with bob: bob's connection hears about the room.
    let dm = open_dm_ok(&alice, &[&bob]).await;
    let dm_id = s(&dm["id"]);
    assert_eq!(dm["kind"], "dm", "{dm}");
    assert_eq!(dm["member_count"], 2, "{dm}");
    let (_, up) = until(&mut bws, |v| {
        v["type"] == "room_updated" && v["room"]["id"] == dm_id.as_str()
    })
    .await;
    assert_eq!(up["room"]["kind"], "dm");
    assert_eq!(
        member_ids(&bob, &dm_id).await,
        sorted(vec![alice.id(), bob.id()])
    );

    // The same set, from either side, any number of times: the same room.
    assert_eq!(open_dm_ok(&bob, &[&alice]).await["id"], dm_id.as_str());
    assert_eq!(open_dm_ok(&alice, &[&bob]).await["id"], dm_id.as_str());

    // A group DM; the same set in another order from another participant.
    let group = open_dm_ok(&alice, &[&bob, &carol]).await;
    let gid = s(&group["id"]);
    assert_ne!(gid, dm_id);
    assert_eq!(group["kind"], "dm");
    assert_eq!(group["member_count"], 3);
    assert_eq!(
        open_dm_ok(&carol, &[&bob, &alice]).await["id"],
        gid.as_str()
    );
    assert_eq!(
        open_dm_ok(&bob, &[&alice, &carol]).await["id"],
        gid.as_str()
    );
    // Another set is another room.
    let ac = open_dm_ok(&alice, &[&carol]).await;
    assert_ne!(s(&ac["id"]), dm_id);
    assert_ne!(s(&ac["id"]), gid);

    // Each participant lists their DMs; others do not see them.
    assert_eq!(
        dm_ids(&alice).await,
        sorted(vec![dm_id.clone(), gid.clone(), s(&ac["id"])])
    );
    assert_eq!(dm_ids(&bob).await, sorted(vec![dm_id.clone(), gid.clone()]));
    assert_eq!(
        dm_ids(&carol).await,
        sorted(vec![gid.clone(), s(&ac["id"])])
    );
    assert!(dm_ids(&dave).await.is_empty());
    assert!(!rooms(&dave).await.iter().any(|r| r["id"] == dm_id.as_str()));

    // Messages flow; DMs notify every other participant by default.
    let m = send(&alice, &dm_id, "psst").await;
    let (_, ev) = until(&mut bws, |v| is_msg_id(v, &s(&m["id"]))).await;
    assert_eq!(ev["message"]["room_id"], dm_id.as_str());
    let (_, n) = until(&mut bws, is_notification).await;
    assert_eq!(n["room_id"], dm_id.as_str(), "{n}");
    assert_eq!(n["message"]["id"], m["id"]);
    let e = room_entry(&bob, &dm_id).await.unwrap();
    assert_eq!(e["notification_level"], "all", "DMs default to all: {e}");
    assert_eq!(e["unread_count"], 1);

    // A DM is for its set of people: no one is invited into it.
    let r = alice
        .post(
            &format!("/api/v1/rooms/{dm_id}/invites"),
            json!({"user_id": dave.id()}),
        )
        .await;
    err_any(&r, &["invalid", "forbidden"], "inviting someone into a DM");
    assert_eq!(
        member_ids(&alice, &dm_id).await,
        sorted(vec![alice.id(), bob.id()])
    );

    // Outsiders get not_found for everything about it.
    let mut dws = dave.connect().await;
    for (what, r) in [
        (
            "GET room",
            dave.get(&format!("/api/v1/rooms/{dm_id}")).await,
        ),
        (
            "history",
            dave.get(&format!("/api/v1/rooms/{dm_id}/messages")).await,
        ),
        (
            "members",
            dave.get(&format!("/api/v1/rooms/{dm_id}/members")).await,
        ),
        ("send", send_raw(&dave, &dm_id, json!({"body": "hi"})).await),
        ("join", join(&dave, &dm_id).await),
        (
            "message",
            dave.get(&format!("/api/v1/messages/{}", s(&m["id"]))).await,
        ),
        ("react", react(&dave, &s(&m["id"]), "👍").await),
        (
            "thread",
            dave.get(&format!("/api/v1/messages/{}/thread", s(&m["id"])))
                .await,
        ),
        (
            "pins",
            dave.get(&format!("/api/v1/rooms/{dm_id}/pins")).await,
        ),
    ] {
        err(&r, "not_found", &format!("outsider: {what}"));
    }
    let (reply, _) = call(&mut dws, send_frame(&dm_id, "let me in")).await;
    reply_err(&reply, "not_found", "outsider gateway send");
    let (reply, _) = call(&mut dws, json!({"type": "join_room", "room_id": dm_id})).await;
    reply_err(&reply, "not_found", "outsider gateway join");
    assert_eq!(
        member_ids(&alice, &dm_id).await,
        sorted(vec![alice.id(), bob.id()])
    );
    assert_eq!(last_seq(&alice, &dm_id).await, 1);
});

both!(dm_bad_input_is_invalid_and_changes_nothing, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let mut others = Vec::new();
    for i in 0..9 {
        others.push(env.register(&format!("user{i}"), PW).await);
    }
    let before = rooms(&alice).await.len();

    let ten: Vec<String> = others.iter().map(|a| a.id()).chain([bob.id()]).collect();
    let cases: Vec<(&str, Value)> = vec![
        ("no one", json!({"user_ids": []})),
        ("only self", json!({"user_ids": [alice.id()]})),
        (
            "self among others",
            json!({"user_ids": [bob.id(), alice.id()]}),
        ),
        ("repeated", json!({"user_ids": [bob.id(), bob.id()]})),
        ("unknown user", json!({"user_ids": ["nope"]})),
        (
            "unknown among known",
            json!({"user_ids": [bob.id(), "nope"]}),
        ),
        ("ten others", json!({ "user_ids": ten })),
    ];
    for (what, body) in cases {
        let r = alice.post("/api/v1/dms", body).await;
        invalid(&r, "user_ids", what);
    }
    for (what, body) in [
        ("missing", json!({})),
        ("not a list", json!({"user_ids": bob.id()})),
        ("numbers", json!({"user_ids": [1, 2]})),
    ] {
        let r = alice.post("/api/v1/dms", body).await;
        err(&r, "invalid", what);
    }
    assert_eq!(rooms(&alice).await.len(), before, "no room was created");
    assert!(dm_ids(&alice).await.is_empty());
    assert!(dm_ids(&bob).await.is_empty());

    // Nine others is the limit and works.
    let refs: Vec<&Api> = others.iter().collect();
    let big = open_dm_ok(&alice, &refs).await;
    assert_eq!(big["member_count"], 10);
    assert_eq!(dm_ids(&others[8]).await, vec![s(&big["id"])]);
});

both!(concurrent_opens_of_one_dm_make_one_room, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let carol = env.register("carol", PW).await;
    let calls = (0..6).map(|i| {
        let (me, others): (&Api, Vec<&Api>) = match i % 3 {
            0 => (&alice, vec![&bob, &carol]),
            1 => (&bob, vec![&carol, &alice]),
            _ => (&carol, vec![&alice, &bob]),
        };
        async move { open_dm(me, &others).await }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut ids = Vec::new();
    for r in &results {
        ok(r, "concurrent DM open");
        ids.push(s(&r.body["id"]));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one DM room for one set of people: {ids:?}");
    for u in [&alice, &bob, &carol] {
        assert_eq!(dm_ids(u).await, ids, "DM list of {}", u.id());
    }
    assert_eq!(member_ids(&alice, &ids[0]).await.len(), 3);
});

both!(dm_notification_level_can_be_lowered, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let dm = s(&open_dm_ok(&alice, &[&bob]).await["id"]);
    let r = bob
        .put(
            &format!("/api/v1/rooms/{dm}/notifications"),
            json!({"level": "mentions"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", text(&r));
    assert_eq!(
        room_entry(&bob, &dm).await.unwrap()["notification_level"],
        "mentions"
    );
    let mut bws = bob.connect().await;
    let quiet = send(&alice, &dm, "no need to answer").await;
    let loud = send(&alice, &dm, "@bob please answer").await;
    let (_, n) = until(&mut bws, is_notification).await;
    assert_eq!(
        n["message"]["id"], loud["id"],
        "quiet DM message {} notified",
        quiet["id"]
    );
    let r = bob
        .put(
            &format!("/api/v1/rooms/{dm}/notifications"),
            json!({"level": "none"}),
        )
        .await;
    assert_eq!(r.status, 204);
    send(&alice, &dm, "@bob still there?").await;
    let r = bob
        .put(
            &format!("/api/v1/rooms/{dm}/notifications"),
            json!({"level": "all"}),
        )
        .await;
    assert_eq!(r.status, 204);
    let last = send(&alice, &dm, "bye").await;
    let (_, n) = until(&mut bws, is_notification).await;
    assert_eq!(
        n["message"]["id"], last["id"],
        "a notification at level none: {n}"
    );
});

both!(a_participant_who_left_can_open_the_dm_again, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let dm = s(&open_dm_ok(&alice, &[&bob]).await["id"]);
    send(&alice, &dm, "before").await;
    let r = bob
        .post(&format!("/api/v1/rooms/{dm}/leave"), json!({}))
        .await;
    ok(&r, "bob leaves the DM");
    assert!(dm_ids(&bob).await.is_empty(), "bob left");
    let while_away = send(&alice, &dm, "while you were away").await;

    // The same set of people: bob gets the same room back, as a member.
    let r = open_dm(&bob, &[&alice]).await;
    ok(&r, "bob opens the DM with alice again");
    assert_eq!(r.body["id"], dm.as_str(), "the same DM room");
    assert_eq!(dm_ids(&bob).await, vec![dm.clone()]);
    assert_eq!(
        member_ids(&alice, &dm).await,
        sorted(vec![alice.id(), bob.id()])
    );
    let h = all_messages(&bob, &dm).await;
    assert!(
        ids(&h).contains(&s(&while_away["id"])),
        "bob reads the DM history"
    );
    let mut bws = bob.connect().await;
    let m = send(&alice, &dm, "welcome back").await;
    let (_, ev) = until(&mut bws, |v| is_msg_id(v, &s(&m["id"]))).await;
    assert_eq!(ev["message"]["room_id"], dm.as_str());
});
