//! SPEC §7 `GET /search`.

use serde_json::json;

use crate::support::*;

both!(
    search_matches_all_terms_with_a_prefix_last_and_marks_snippets,
    |env| {
        let (_root, alice, bob) = trio(&env).await;
        let room = new_room(&alice, "searchable", json!({})).await;
        let other = new_room(&alice, "other", json!({})).await;
        join_ok(&bob, &room).await;
        join_ok(&bob, &other).await;
        let fox = send(&alice, &room, "The quick brown fox jumps").await;
        let thinking = send(&bob, &room, "Quick thinking saves the day").await;
        let html = send(&alice, &other, "<b>bold</b> & \"quoted\" fox 'single'").await;
        let _noise = send(&alice, &room, "nothing to see here").await;

        // One term, case-insensitive.
        let r = search_ok(&bob, "quick", "").await;
        assert_eq!(
            result_ids(&r),
            sorted(vec![s(&fox["id"]), s(&thinking["id"])])
        );
        let r = search_ok(&bob, "QUICK", "").await;
        assert_eq!(r.len(), 2, "case-insensitive");
        // Every term must match.
        let r = search_ok(&bob, "quick fox", "").await;
        assert_eq!(result_ids(&r), vec![s(&fox["id"])]);
        let r = search_ok(&bob, "quick zebra", "").await;
        assert!(r.is_empty(), "all terms must match: {r:?}");
        // The last term is a prefix; the others are whole words.
        let r = search_ok(&bob, "qui", "").await;
        assert_eq!(r.len(), 2, "prefix of the last term");
        let r = search_ok(&bob, "brown ju", "").await;
        assert_eq!(result_ids(&r), vec![s(&fox["id"])]);
        let r = search_ok(&bob, "bro jumps", "").await;
        assert!(r.is_empty(), "only the last term is a prefix: {r:?}");

        // The result: the message as the caller sees it, and an escaped snippet.
        let r = search_ok(&bob, "brown", "").await;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["message"]["id"], fox["id"]);
        assert_eq!(r[0]["message"]["body"], fox["body"]);
        assert_eq!(r[0]["message"]["author"]["id"], alice.id());
        let snip = s(&r[0]["snippet"]);
        assert!(
            snip.contains("<mark>brown</mark>"),
            "snippet marks the match: {snip}"
        );
        let r = search_ok(&bob, "fox", &format!("&room_id={other}")).await;
        assert_eq!(result_ids(&r), vec![s(&html["id"])]);
        let snip = s(&r[0]["snippet"]);
        assert!(snip.contains("<mark>fox</mark>"), "{snip}");
        assert!(!snip.contains("<b>"), "no markup from the body: {snip}");
        assert!(snip.contains("&amp;"), "{snip}");
        assert!(
            !snip.contains('"') && !snip.contains('\''),
            "quotes escaped: {snip}"
        );
        let stripped = snip.replace("<mark>", "").replace("</mark>", "");
        assert!(!stripped.contains('<') && !stripped.contains('>'), "{snip}");

        // Filters and limit.
        let r = search_ok(&bob, "quick", &format!("&room_id={room}")).await;
        assert_eq!(r.len(), 2);
        let r = search_ok(&bob, "quick", &format!("&room_id={other}")).await;
        assert!(r.is_empty());
        let r = search_ok(&bob, "quick", &format!("&author_id={}", bob.id())).await;
        assert_eq!(result_ids(&r), vec![s(&thinking["id"])]);
        let r = search_ok(
            &bob,
            "quick",
            &format!("&author_id={}&room_id={room}", alice.id()),
        )
        .await;
        assert_eq!(result_ids(&r), vec![s(&fox["id"])]);
        let r = search_ok(&bob, "quick", "&limit=1").await;
        assert_eq!(r.len(), 1, "limit=1");
        for bad in ["limit=0", "limit=-3", "limit=abc"] {
            let r = search(&bob, &format!("q=quick&{bad}")).await;
            err(&r, "invalid", &format!("search {bad}"));
        }

        // Reactions' `me` is the caller's in results.
        let rr = react(&bob, &s(&fox["id"]), "👍").await;
        ok(&rr, "react");
        let r = search_ok(&bob, "brown", "").await;
        assert_eq!(
            r[0]["message"]["reactions"],
            json!([{"emoji": "👍", "count": 1, "me": true}])
        );
        let r = search_ok(&alice, "brown", "").await;
        assert_eq!(
            r[0]["message"]["reactions"],
            json!([{"emoji": "👍", "count": 1, "me": false}])
        );
    }
);

both!(
    search_covers_only_the_callers_rooms_and_live_messages,
    |env| {
        let (_root, alice, bob) = trio(&env).await;
        let carol = env.register("carol", PW).await;
        let private = new_room(&alice, "secret", json!({"kind": "private"})).await;
        let public = new_room(&alice, "open", json!({})).await;
        let shared = new_room(&alice, "shared", json!({})).await;
        join_ok(&bob, &shared).await;
        let secret = send(&alice, &private, "zanzibar private plans").await;
        let open = send(&alice, &public, "zanzibar public plans").await;
        let mine = send(&alice, &shared, "zanzibar shared plans").await;
        let dm = alice
            .post("/api/v1/dms", json!({"user_ids": [carol.id()]}))
            .await;
        ok(&dm, "DM");
        let in_dm = send(&alice, &s(&dm.body["id"]), "zanzibar in a DM").await;

        assert_eq!(
            result_ids(&search_ok(&alice, "zanzibar", "").await),
            sorted(vec![
                s(&secret["id"]),
                s(&open["id"]),
                s(&mine["id"]),
                s(&in_dm["id"])
            ])
        );
        // bob: only the room he is a member of (not the public one he never joined).
        assert_eq!(
            result_ids(&search_ok(&bob, "zanzibar", "").await),
            vec![s(&mine["id"])]
        );
        assert_eq!(
            result_ids(&search_ok(&carol, "zanzibar", "").await),
            vec![s(&in_dm["id"])]
        );
        // Naming a room one cannot read finds nothing there.
        for room in [&private, &public] {
            let r = search(&bob, &format!("q=zanzibar&room_id={room}")).await;
            if is_ok(&r) {
                assert_eq!(
                    r.body["results"],
                    json!([]),
                    "bob searching {room}: {}",
                    text(&r)
                );
            } else {
                err_any(
                    &r,
                    &["forbidden", "not_found"],
                    "search in a room bob cannot search",
                );
            }
            assert!(!text(&r).contains("plans"), "{}", text(&r));
        }
        // Joining makes the public room searchable.
        join_ok(&bob, &public).await;
        assert_eq!(
            result_ids(&search_ok(&bob, "zanzibar", "").await),
            sorted(vec![s(&open["id"]), s(&mine["id"])])
        );

        // Deleted messages are never found; edits are found by their new text only.
        let r = alice
            .delete(&format!("/api/v1/messages/{}", s(&mine["id"])))
            .await;
        ok(&r, "delete");
        assert_eq!(
            result_ids(&search_ok(&bob, "zanzibar", "").await),
            vec![s(&open["id"])]
        );
        assert!(
            search_ok(&bob, "shared", "").await.is_empty(),
            "deleted message found"
        );
        let r = alice
            .patch(
                &format!("/api/v1/messages/{}", s(&open["id"])),
                json!({"body": "timbuktu public plans"}),
            )
            .await;
        ok(&r, "edit");
        assert!(
            search_ok(&bob, "zanzibar", "").await.is_empty(),
            "old text found after edit"
        );
        assert_eq!(
            result_ids(&search_ok(&bob, "timbuktu", "").await),
            vec![s(&open["id"])]
        );

        // Leaving a room takes it out of one's search.
        let r = bob
            .post(&format!("/api/v1/rooms/{public}/leave"), json!({}))
            .await;
        ok(&r, "leave");
        assert!(search_ok(&bob, "timbuktu", "").await.is_empty());
    }
);

both!(any_search_text_is_accepted, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "garbage", json!({})).await;
    join_ok(&bob, &room).await;
    let target = send(
        &alice,
        &room,
        "findable needle (with) \"quotes\" and AND OR NOT * ^ : 🚀 O'Brien",
    )
    .await;
    send(&alice, &room, "another message with needle").await;

    let long_ok = "needle ".repeat(36) + "need"; // 256 chars
    assert_eq!(long_ok.chars().count(), 256);
    let queries: Vec<String> = vec![
        "\"".into(),
        "\"\"".into(),
        "\"needle".into(),
        "*".into(),
        "needle*".into(),
        "*needle".into(),
        "(".into(),
        ")".into(),
        "(needle".into(),
        "needle)".into(),
        "AND".into(),
        "OR".into(),
        "NOT".into(),
        "needle AND".into(),
        "AND needle".into(),
        "needle OR".into(),
        "NOT needle".into(),
        "NEAR(".into(),
        "NEAR(needle findable)".into(),
        "needle NEAR/2 findable".into(),
        ":".into(),
        "body:needle".into(),
        "^".into(),
        "^needle".into(),
        "-needle".into(),
        "+needle".into(),
        "needle -findable".into(),
        "{needle}".into(),
        "[needle]".into(),
        "'".into(),
        "O'Brien".into(),
        "' OR '1'='1".into(),
        "'; DROP TABLE messages; --".into(),
        "needle'); DELETE FROM messages; --".into(),
        "%".into(),
        "_".into(),
        "\\".into(),
        "needle\\".into(),
        "&".into(),
        "|".into(),
        "!".into(),
        "needle & findable".into(),
        "needle | findable".into(),
        "!needle".into(),
        "needle:*".into(),
        "<->".into(),
        "needle <-> findable".into(),
        "🚀".into(),
        "needle 🚀".into(),
        "\u{0}".into(),
        "needle\u{0}".into(),
        " ".into(),
        "\t\n".into(),
        "ÄÖÜ ß".into(),
        "日本語".into(),
        "² ½ Ⅻ ǅ ﬁ İ ٣".into(),
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢".into(),
        "e\u{301}".into(),
        "a_b".into(),
        "__init__".into(),
        "needle_".into(),
        "x".repeat(256),
        "é".repeat(256),
        "a b c d e f g h i j k l m n o p q r s t u v w x y z".into(),
        long_ok,
    ];
    for q in &queries {
        let r = search(&bob, &format!("q={}", enc(q))).await;
        assert_ne!(r.status, 500, "search {q:?} crashed: {}", text(&r));
        ok(&r, &format!("search {q:?}"));
        assert!(r.body["results"].is_array(), "search {q:?}: {}", text(&r));
    }
    // Queries that still have words search those words.
    for q in [
        "needle)",
        "(needle",
        "\"needle",
        "needle*",
        "*needle",
        "'; needle --",
    ] {
        let got = search_ok(&bob, q, "").await;
        assert_eq!(got.len(), 2, "search {q:?} finds both needles: {got:?}");
    }
    let got = search_ok(&bob, "O'Brien", "").await;
    assert_eq!(result_ids(&got), vec![s(&target["id"])]);

    // Empty → no results; too long → invalid field q.
    for q in ["q=", ""] {
        let r = search(&bob, q).await;
        ok(&r, &format!("search ?{q}"));
        assert_eq!(r.body["results"], json!([]), "?{q}");
    }
    for n in [257, 300, 5000] {
        let q = "a".repeat(n);
        let r = search(&bob, &format!("q={q}")).await;
        invalid(&r, "q", &format!("{n}-character query"));
    }
    // Bytes that are not UTF-8 are refused, never a crash.
    let r = search(&bob, "q=%FF%FE").await;
    assert_ne!(r.status, 500, "non-UTF-8 query crashed: {}", text(&r));
    assert!(r.status < 500, "{}", text(&r));

    // Everything still works.
    assert_eq!(search_ok(&bob, "needle", "").await.len(), 2);
    assert_eq!(all_messages(&bob, &room).await.len(), 2);
});

both!(snippets_show_the_message_text_and_mark_every_match, |env| {
    let (_root, alice, bob) = trio(&env).await;
    let room = new_room(&alice, "snippets", json!({})).await;
    join_ok(&bob, &room).await;
    let tagged = send(
        &alice,
        &room,
        "use <b>bold</b> and <div> tags, says the walrus",
    )
    .await;
    let addr = send(
        &alice,
        &room,
        "write to bob@corp.io or read example.com/docs today",
    )
    .await;
    // Every problem is collected, so one run reports them all.
    let mut problems: Vec<String> = Vec::new();

    // The snippet is the message's own text, escaped: tag-like text is kept (the
    // message shows it as text), never dropped or rendered.
    let r = search_ok(&bob, "walrus", "").await;
    assert_eq!(result_ids(&r), vec![s(&tagged["id"])]);
    let snip = s(&r[0]["snippet"]);
    assert!(!snip.contains("<b>") && !snip.contains("<div>"), "{snip}");
    if !snip.contains("<mark>walrus</mark>") {
        problems.push(format!("search \"walrus\": match not marked: {snip}"));
    }
    if !(snip.contains("&lt;b&gt;bold&lt;/b&gt;") && snip.contains("&lt;div&gt;")) {
        problems.push(format!(
            "search \"walrus\": the snippet drops or alters text of the message {:?}: {snip}",
            s(&tagged["body"])
        ));
    }

    // A match inside an address or a path is found and marked.
    for word in ["corp", "docs", "example"] {
        let r = search_ok(&bob, word, "").await;
        assert_eq!(result_ids(&r), vec![s(&addr["id"])], "search {word:?}");
        let snip = s(&r[0]["snippet"]);
        if !snip
            .to_lowercase()
            .contains(&format!("<mark>{word}</mark>"))
        {
            problems.push(format!("search {word:?}: the match is not marked: {snip}"));
        }
    }
    assert!(
        problems.is_empty(),
        "snippet problems:\n{}",
        problems.join("\n")
    );
});
