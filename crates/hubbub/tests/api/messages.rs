//! SPEC §6/§7: messages over REST — shape, seq, history paging, edit/delete rules,
//! replies, Markdown sanitizing, client_id idempotency, membership.

use serde_json::{Value, json};

use crate::support::*;

const MESSAGE_FIELDS: [&str; 18] = [
    "id",
    "room_id",
    "seq",
    "pos",
    "author",
    "body",
    "html",
    "created_at",
    "edited_at",
    "deleted",
    "pinned",
    "reply_to",
    "thread_root",
    "reply_count",
    "reactions",
    "attachments",
    "mentions",
    "client_id",
];

#[tokio::test]
async fn rest_send_returns_the_full_message_object() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "shape", json!({})).await;
    let r = send_raw(
        &alice,
        &room,
        json!({"body": "hello **world**", "client_id": "shape-1"}),
    )
    .await;
    ok(&r, "send");
    let m = &r.body;
    for k in MESSAGE_FIELDS {
        assert!(m.get(k).is_some(), "message lacks {k}: {m}");
    }
    assert_eq!(m["room_id"], room.as_str());
    assert_eq!(m["seq"], 1, "seq starts at 1");
    assert!(m["pos"].as_i64().is_some_and(|p| p > 0));
    assert_eq!(m["author"]["id"], alice.user["id"]);
    assert_eq!(m["author"]["username"], "alice");
    assert_eq!(m["body"], "hello **world**");
    assert!(
        s(&m["html"]).contains("<strong>world</strong>"),
        "html: {}",
        m["html"]
    );
    assert!(m["created_at"].is_string());
    assert!(m["edited_at"].is_null());
    assert_eq!(m["deleted"], false);
    assert_eq!(m["pinned"], false);
    assert!(m["reply_to"].is_null() && m["thread_root"].is_null());
    assert_eq!(m["reply_count"], 0);
    assert_eq!(m["reactions"], json!([]));
    assert_eq!(m["attachments"], json!([]));
    assert_eq!(m["mentions"], json!([]));
    assert_eq!(m["client_id"], "shape-1");
    // and it is in the history, identical
    let msgs = all_messages(&alice, &room).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["id"], m["id"]);
    assert_eq!(msgs[0]["body"], m["body"]);
    assert_eq!(msgs[0]["html"], m["html"]);
    // and the room reflects it
    assert_eq!(room_entry(&alice, &room).await.unwrap()["last_seq"], 1);
}

#[tokio::test]
async fn seq_increases_by_one_and_pos_strictly() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "counting", json!({})).await;
    join_ok(&bob, &room).await;
    let mut last_pos = 0;
    for i in 1..=6 {
        let who = if i % 2 == 0 { &alice } else { &bob };
        let m = send(who, &room, &format!("n{i}")).await;
        assert_eq!(m["seq"], i, "seq of message {i}");
        let pos = m["pos"].as_i64().unwrap();
        assert!(
            pos > last_pos,
            "pos must strictly increase: {pos} after {last_pos}"
        );
        last_pos = pos;
    }
    // Other rooms count independently.
    let other = new_room(&alice, "other", json!({})).await;
    assert_eq!(send(&alice, &other, "first").await["seq"], 1);
}

#[tokio::test]
async fn history_paging_follows_the_spec_table() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "paging", json!({})).await;
    for i in 1..=7 {
        send(&alice, &room, &format!("m{i}")).await;
    }
    let all: Vec<i64> = (1..=7).collect();
    let cases: Vec<(&str, Vec<i64>, bool)> = vec![
        ("", all.clone(), false),
        ("limit=3", vec![5, 6, 7], true),
        ("limit=7", all.clone(), false),
        ("limit=10", all.clone(), false),
        ("limit=1", vec![7], true),
        ("before_seq=5&limit=2", vec![3, 4], true),
        ("before_seq=3&limit=2", vec![1, 2], false),
        ("before_seq=3&limit=5", vec![1, 2], false),
        ("before_seq=1&limit=5", vec![], false),
        ("before_seq=100&limit=2", vec![6, 7], true),
        ("before_seq=8", all.clone(), false),
        ("after_seq=2&limit=3", vec![3, 4, 5], true),
        ("after_seq=4&limit=3", vec![5, 6, 7], false),
        ("after_seq=0&limit=2", vec![1, 2], true),
        ("after_seq=7&limit=3", vec![], false),
        ("after_seq=4", vec![5, 6, 7], false),
    ];
    for (q, want, more) in cases {
        let (msgs, has_more) = history(&alice, &room, q).await;
        assert_eq!(seqs(&msgs), want, "messages for ?{q}");
        assert_eq!(has_more, more, "has_more for ?{q}");
    }
}

#[tokio::test]
async fn history_default_limit_is_50_and_limit_is_capped_at_200() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "long", json!({})).await;
    bulk_send(&alice, &room, 205, "bulk").await;
    let (m, more) = history(&alice, &room, "").await;
    assert_eq!(
        seqs(&m),
        (156..=205).collect::<Vec<_>>(),
        "default page is the newest 50"
    );
    assert!(more);
    let (m, more) = history(&alice, &room, "limit=200").await;
    assert_eq!(seqs(&m), (6..=205).collect::<Vec<_>>());
    assert!(more);
    for q in ["limit=201", "limit=500", "limit=100000"] {
        let (m, more) = history(&alice, &room, q).await;
        assert_eq!(m.len(), 200, "?{q} is treated as limit=200");
        assert_eq!(seqs(&m), (6..=205).collect::<Vec<_>>(), "?{q}");
        assert!(more, "?{q} has_more");
    }
    let (m, more) = history(&alice, &room, "after_seq=0&limit=1000").await;
    assert_eq!(seqs(&m), (1..=200).collect::<Vec<_>>());
    assert!(more);
    let (m, more) = history(&alice, &room, "before_seq=6&limit=1000").await;
    assert_eq!(seqs(&m), (1..=5).collect::<Vec<_>>());
    assert!(!more);
}

#[tokio::test]
async fn only_the_author_may_edit() {
    let server = fast().await;
    let (root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "edits", json!({})).await;
    join_ok(&bob, &room).await;
    let m = send(&bob, &room, "original *text*").await;
    let id = s(&m["id"]);

    for (who, api) in [("room owner", &alice), ("server admin", &root)] {
        join(api, &room).await;
        let r = api
            .patch(
                &format!("/api/v1/messages/{id}"),
                json!({"body": "not yours"}),
            )
            .await;
        err(
            &r,
            "forbidden",
            &format!("{who} editing someone else's message"),
        );
    }
    let now = &all_messages(&bob, &room).await[0];
    assert_eq!(now["body"], "original *text*");
    assert!(now["edited_at"].is_null());

    let r = bob
        .patch(
            &format!("/api/v1/messages/{id}"),
            json!({"body": "edited **text**"}),
        )
        .await;
    ok(&r, "author edit");
    let e = &r.body;
    assert_eq!(e["id"], id.as_str());
    assert_eq!(e["seq"], m["seq"], "an edit keeps the seq");
    assert!(
        e["pos"].as_i64().unwrap() > m["pos"].as_i64().unwrap(),
        "an edit takes a new pos"
    );
    assert_eq!(e["body"], "edited **text**");
    assert!(s(&e["html"]).contains("<strong>text</strong>"));
    assert!(e["edited_at"].is_string(), "edited_at set");
    let h = &all_messages(&alice, &room).await[0];
    assert_eq!(h["body"], "edited **text**");
    assert!(h["edited_at"].is_string());

    let r = bob
        .patch(&format!("/api/v1/messages/{id}"), json!({"body": "   "}))
        .await;
    invalid(&r, Some("body"), "edit to whitespace");
    let r = bob
        .patch("/api/v1/messages/no-such-message", json!({"body": "x"}))
        .await;
    err(&r, "not_found", "edit unknown message");
}

#[track_caller]
fn assert_tombstone(m: &Value, seq: i64) {
    assert_eq!(m["deleted"], true, "not a tombstone: {m}");
    assert_eq!(m["body"], "", "tombstone keeps its body: {m}");
    assert_eq!(m["html"], "", "tombstone keeps its html: {m}");
    assert_eq!(
        m["attachments"],
        json!([]),
        "tombstone keeps attachments: {m}"
    );
    assert_eq!(m["seq"], seq, "tombstone keeps its seq");
}

#[tokio::test]
async fn delete_by_author_or_moderator_leaves_a_tombstone() {
    let server = fast().await;
    let (root, alice, bob) = trio(&server).await;
    let carol = server.register("carol", PW).await;
    let room = new_room(&alice, "deletes", json!({})).await;
    join_ok(&bob, &room).await;
    join_ok(&carol, &room).await;
    let m1 = send(&bob, &room, "bob one").await;
    let m2 = send(&bob, &room, "bob two").await;
    let m3 = send(&carol, &room, "carol three").await;

    // A plain member cannot delete someone else's message.
    let r = carol
        .delete(&format!("/api/v1/messages/{}", s(&m1["id"])))
        .await;
    err(&r, "forbidden", "member deleting another's message");
    assert_eq!(all_messages(&bob, &room).await[0]["deleted"], false);

    // The author can.
    let r = bob
        .delete(&format!("/api/v1/messages/{}", s(&m1["id"])))
        .await;
    ok(&r, "author delete");
    // The room owner (moderator+) can.
    let r = alice
        .delete(&format!("/api/v1/messages/{}", s(&m2["id"])))
        .await;
    ok(&r, "owner deleting a member's message");
    // A server admin (acts as owner) can.
    let r = root
        .delete(&format!("/api/v1/messages/{}", s(&m3["id"])))
        .await;
    ok(&r, "server admin deleting a message");

    let msgs = all_messages(&carol, &room).await;
    assert_eq!(msgs.len(), 3, "tombstones stay in the history");
    for (i, m) in msgs.iter().enumerate() {
        assert_tombstone(m, i as i64 + 1);
        assert!(
            m["pos"].as_i64().unwrap() > m3["pos"].as_i64().unwrap(),
            "a delete takes a new pos"
        );
    }
    // The next message still gets the next seq.
    assert_eq!(send(&bob, &room, "after").await["seq"], 4);
}

#[tokio::test]
async fn replies_must_stay_in_their_room() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let a = new_room(&alice, "room-a", json!({})).await;
    let b = new_room(&alice, "room-b", json!({})).await;
    let ma = send(&alice, &a, "in A").await;

    let r = send_raw(
        &alice,
        &b,
        json!({"body": "reply across rooms", "reply_to": ma["id"]}),
    )
    .await;
    invalid(&r, Some("reply_to"), "reply_to in another room");
    let r = send_raw(
        &alice,
        &b,
        json!({"body": "thread across rooms", "thread_root": ma["id"]}),
    )
    .await;
    invalid(&r, Some("thread_root"), "thread_root in another room");
    assert!(
        all_messages(&alice, &b).await.is_empty(),
        "refused replies stored something"
    );

    let r = send_raw(
        &alice,
        &a,
        json!({"body": "a proper reply", "reply_to": ma["id"]}),
    )
    .await;
    ok(&r, "reply in the same room");
    assert_eq!(r.body["reply_to"], ma["id"]);
    assert_eq!(r.body["seq"], 2);
}

#[tokio::test]
async fn markdown_is_rendered_and_sanitized() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "md", json!({})).await;

    let rendered = [
        ("**bold**", "<strong>bold</strong>"),
        ("*em*", "<em>em</em>"),
        ("`code`", "<code>code</code>"),
    ];
    for (body, want) in rendered {
        let m = send(&alice, &room, body).await;
        assert!(
            s(&m["html"]).contains(want),
            "{body:?} rendered as {}",
            m["html"]
        );
        assert_eq!(m["body"], body, "body is stored as written");
    }

    let hostile = [
        "<script>alert(1)</script>hi",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)></svg>",
        "<a href=\"#\" onclick=\"alert(1)\">x</a>",
        "[click me](javascript:alert(1))",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
        "[x](  javascript:alert(1))",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<style>body{display:none}</style>",
        "<div style=\"position:fixed\" onmouseover=\"alert(1)\">hover</div>",
    ];
    for body in hostile {
        let m = send(&alice, &room, body).await;
        let html = s(&m["html"]);
        for (name, attrs) in tags(&html) {
            assert!(
                !["script", "iframe", "style", "object", "embed"].contains(&name.as_str()),
                "{body:?} kept a <{name}> element: {html}"
            );
            for (k, v) in attrs {
                assert!(
                    !k.starts_with("on"),
                    "{body:?} kept an event handler {k}: {html}"
                );
                let v = v.trim().to_ascii_lowercase();
                assert!(
                    !((k == "href" || k == "src") && v.starts_with("javascript:")),
                    "{body:?} kept a javascript: URL: {html}"
                );
            }
        }
        assert_eq!(m["body"], body, "the raw body is kept as text");
    }

    let m = send(
        &alice,
        &room,
        "see [the site](https://example.com/page) now",
    )
    .await;
    let html = s(&m["html"]);
    let links: Vec<_> = tags(&html).into_iter().filter(|(n, _)| n == "a").collect();
    assert_eq!(links.len(), 1, "one link expected: {html}");
    let attrs = &links[0].1;
    let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    assert_eq!(
        get("href").as_deref(),
        Some("https://example.com/page"),
        "link lost: {html}"
    );
    let rel = get("rel").unwrap_or_else(|| panic!("link without rel: {html}"));
    for token in ["noopener", "noreferrer", "nofollow"] {
        assert!(
            rel.split_whitespace().any(|t| t == token),
            "rel {rel:?} lacks {token}"
        );
    }
    // History serves the same sanitized html.
    let last = all_messages(&alice, &room).await.pop().unwrap();
    assert_eq!(last["html"], m["html"]);
}

/// Start tags of an HTML fragment: (lower-case name, [(lower-case attr, value)]).
/// Escaped text (`&lt;script&gt;`) is text, not a tag, so it does not show up here.
fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let b = html.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' || i + 1 >= b.len() || !(b[i + 1] as char).is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        i += 1;
        let start = i;
        while i < b.len() && !(b[i] as char).is_ascii_whitespace() && b[i] != b'>' && b[i] != b'/' {
            i += 1;
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attrs = Vec::new();
        loop {
            while i < b.len() && ((b[i] as char).is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                break;
            }
            let ks = i;
            while i < b.len()
                && b[i] != b'='
                && b[i] != b'>'
                && !(b[i] as char).is_ascii_whitespace()
            {
                i += 1;
            }
            let key = html[ks..i].to_ascii_lowercase();
            let mut val = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    i += 1;
                    let vs = i;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                    val = html[vs..i].replace("&amp;", "&");
                    i += 1;
                } else {
                    let vs = i;
                    while i < b.len() && !(b[i] as char).is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    val = html[vs..i].to_string();
                }
            }
            attrs.push((key, val));
        }
        out.push((name, attrs));
    }
    out
}

#[tokio::test]
async fn client_id_makes_rest_sends_idempotent() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "retry", json!({})).await;
    join_ok(&bob, &room).await;
    let r1 = send_raw(
        &alice,
        &room,
        json!({"body": "first try", "client_id": "same-id"}),
    )
    .await;
    ok(&r1, "first send");
    let r2 = send_raw(
        &alice,
        &room,
        json!({"body": "second try", "client_id": "same-id"}),
    )
    .await;
    ok(&r2, "retried send");
    assert_eq!(
        r2.body["id"], r1.body["id"],
        "retry returns the original message"
    );
    assert_eq!(r2.body["seq"], r1.body["seq"]);
    assert_eq!(r2.body["body"], "first try", "retry stores nothing new");
    assert_eq!(all_messages(&alice, &room).await.len(), 1);

    // client_id is per author: bob may use the same one.
    let r3 = send_raw(
        &bob,
        &room,
        json!({"body": "bob's", "client_id": "same-id"}),
    )
    .await;
    ok(&r3, "another author, same client_id");
    assert_ne!(r3.body["id"], r1.body["id"]);
    assert_eq!(r3.body["seq"], 2);
    assert_eq!(all_messages(&alice, &room).await.len(), 2);
}

#[tokio::test]
async fn client_id_makes_gateway_and_mixed_sends_idempotent() {
    let server = fast().await;
    let (_root, alice, _) = trio(&server).await;
    let room = new_room(&alice, "retry-ws", json!({})).await;
    let mut ws = alice.connect().await;
    let frame =
        json!({"type": "send", "room_id": room, "client_id": "gw-1", "body": "over the gateway"});
    let (a, _) = call(&mut ws, frame.clone()).await;
    reply_ok(&a, "first gateway send");
    let (b, _) = call(&mut ws, frame.clone()).await;
    reply_ok(&b, "repeated gateway send");
    assert_eq!(a["data"]["id"], b["data"]["id"]);
    // Same client_id over REST: still the same message.
    let r = send_raw(
        &alice,
        &room,
        json!({"body": "over REST", "client_id": "gw-1"}),
    )
    .await;
    ok(&r, "REST retry of a gateway send");
    assert_eq!(r.body["id"], a["data"]["id"]);
    // And from another connection.
    let mut ws2 = alice.connect().await;
    let (c, _) = call(&mut ws2, frame).await;
    reply_ok(&c, "gateway retry from another connection");
    assert_eq!(c["data"]["id"], a["data"]["id"]);
    assert_eq!(all_messages(&alice, &room).await.len(), 1);
}

#[tokio::test]
async fn non_members_cannot_post() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "members", json!({})).await;
    send(&alice, &room, "hello").await;
    let r = send_raw(&bob, &room, json!({"body": "drive-by", "client_id": "x"})).await;
    err(&r, "forbidden", "non-member posting in a public room");
    let mut ws = bob.connect().await;
    let (reply, _) = call(&mut ws, ws_send_frame(&room, "drive-by over the gateway")).await;
    reply_err(&reply, "forbidden", "non-member gateway send");
    assert_eq!(all_messages(&alice, &room).await.len(), 1);
}

#[tokio::test]
async fn mentions_are_recorded_and_notify() {
    let server = fast().await;
    let (_root, alice, bob) = trio(&server).await;
    let room = new_room(&alice, "mentions", json!({})).await;
    join_ok(&bob, &room).await;
    let mut bws = bob.connect().await;
    let m = send(&alice, &room, "hey @bob, look").await;
    assert_eq!(
        m["mentions"],
        json!([bob.id()]),
        "mentions: {}",
        m["mentions"]
    );
    let mid = s(&m["id"]);
    let (_, n) = until(&mut bws, |v| v["type"] == "notification").await;
    assert_eq!(n["room_id"], room.as_str());
    assert_eq!(n["message"]["id"], mid.as_str());
    let e = room_entry(&bob, &room).await.unwrap();
    assert_eq!(e["mention_count"], 1);
    assert_eq!(e["unread_count"], 1);
}
