//! Rich messaging (reactions, pins, threads, mentions, notification levels, DMs,
//! search, attachments) and export/import, on every backend.

use std::collections::HashSet;
use std::sync::Arc;

use hubbub::store::*;

use crate::backend::{Backend, Fresh, Kind};
use crate::cases::{
    account, created, guest, ids, new_msg, new_room, new_user, post, room, seqs, uid, warm_up,
};

// --- helpers ---

async fn react(
    s: &dyn Store,
    message_id: &str,
    user_id: &str,
    emoji: &str,
    add: bool,
    now: i64,
) -> Option<MessageRecord> {
    s.react(message_id, user_id, emoji, add, now)
        .await
        .expect("react")
}

/// Reactions as (emoji, [user ids]) for compact comparisons.
fn reactions(m: &MessageRecord) -> Vec<(String, Vec<String>)> {
    m.reactions
        .iter()
        .map(|r| (r.emoji.clone(), r.user_ids.clone()))
        .collect()
}

fn want(groups: &[(&str, &[&String])]) -> Vec<(String, Vec<String>)> {
    groups
        .iter()
        .map(|(e, us)| (e.to_string(), us.iter().map(|u| u.to_string()).collect()))
        .collect()
}

async fn last_pos(s: &dyn Store, room_id: &str) -> i64 {
    s.room(room_id).await.expect("room").last_pos
}

async fn counters(s: &dyn Store, room_id: &str) -> (i64, i64) {
    let r = s.room(room_id).await.expect("room");
    (r.last_seq, r.last_pos)
}

async fn mention_count(s: &dyn Store, user_id: &str, room_id: &str) -> i64 {
    s.joined_rooms(user_id)
        .await
        .expect("joined_rooms")
        .into_iter()
        .find(|j| j.room.id == room_id)
        .expect("a member of the room")
        .mention_count
}

fn upload(uploader: &str, created_at: i64, sha: &str, thumb: Option<&str>) -> AttachmentRecord {
    AttachmentRecord {
        id: uid(),
        uploader_id: uploader.to_string(),
        message_id: None,
        name: format!("file {sha}.png"),
        content_type: "image/png".into(),
        size: 12_345,
        sha256: sha.to_string(),
        width: thumb.map(|_| 640),
        height: thumb.map(|_| 480),
        thumb_sha256: thumb.map(str::to_string),
        created_at,
    }
}

fn claimed(a: &AttachmentRecord, message_id: &str) -> AttachmentRecord {
    AttachmentRecord {
        message_id: Some(message_id.to_string()),
        ..a.clone()
    }
}

fn sorted_by_id(mut v: Vec<AttachmentRecord>) -> Vec<AttachmentRecord> {
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

fn terms(ts: &[&str]) -> Vec<String> {
    ts.iter().map(|t| t.to_string()).collect()
}

async fn hits(
    s: &dyn Store,
    user_id: &str,
    ts: &[&str],
    room_id: Option<&str>,
    author_id: Option<&str>,
) -> Vec<SearchHit> {
    s.search(user_id, &terms(ts), room_id, author_id, 50)
        .await
        .unwrap_or_else(|e| panic!("search {ts:?}: {e:?}"))
}

fn hit_ids(hs: &[SearchHit]) -> HashSet<String> {
    hs.iter().map(|h| h.message.id.clone()).collect()
}

fn id_set(ms: &[&MessageRecord]) -> HashSet<String> {
    ms.iter().map(|m| m.id.clone()).collect()
}

fn dm_key(users: &[&UserRecord]) -> String {
    let mut ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    ids.sort_unstable();
    ids.join(",")
}

fn new_dm(created_by: &str) -> NewRoom {
    let mut r = new_room("a, b", RoomKind::Dm);
    r.created_by = Some(created_by.to_string());
    r
}

// --- reactions and pins ---

pub async fn reactions_add_remove_and_order(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let carol = account(s, "carol").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let m = post(s, &r.id, &alice.id, "react to me").await;
    let other = post(s, &r.id, &alice.id, "unrelated").await;
    assert!(m.reactions.is_empty() && m.attachments.is_empty());

    let r1 = react(s, &m.id, &alice.id, "👍", true, 10)
        .await
        .expect("a change");
    assert_eq!((r1.seq, r1.pos), (1, 3), "a reaction takes the next pos");
    assert_eq!(reactions(&r1), want(&[("👍", &[&alice.id])]));
    assert_eq!(r1.body, "react to me");
    assert_eq!(counters(s, &r.id).await, (2, 3));
    assert_eq!(s.message(&m.id).await.unwrap(), r1);
    assert_eq!(b.node2.message(&m.id).await.unwrap(), r1);

    // Already there: nothing changes, no pos is taken.
    assert!(react(s, &m.id, &alice.id, "👍", true, 11).await.is_none());
    assert_eq!(counters(s, &r.id).await, (2, 3));

    let r2 = react(s, &m.id, &bob.id, "🎉", true, 12).await.unwrap();
    assert_eq!(r2.pos, 4);
    assert_eq!(
        reactions(&r2),
        want(&[("👍", &[&alice.id]), ("🎉", &[&bob.id])])
    );
    let r3 = react(s, &m.id, &carol.id, "👍", true, 13).await.unwrap();
    assert_eq!(r3.pos, 5);
    assert_eq!(
        reactions(&r3),
        want(&[("👍", &[&alice.id, &carol.id]), ("🎉", &[&bob.id])])
    );
    // One user, several emoji.
    let r4 = react(s, &m.id, &alice.id, "❤️", true, 14).await.unwrap();
    assert_eq!(
        reactions(&r4),
        want(&[
            ("👍", &[&alice.id, &carol.id]),
            ("🎉", &[&bob.id]),
            ("❤️", &[&alice.id])
        ])
    );
    // Groups are ordered by their first remaining reaction.
    let r5 = react(s, &m.id, &alice.id, "👍", false, 15).await.unwrap();
    assert_eq!(r5.pos, 7);
    assert_eq!(
        reactions(&r5),
        want(&[
            ("🎉", &[&bob.id]),
            ("👍", &[&carol.id]),
            ("❤️", &[&alice.id])
        ])
    );
    // Not there: nothing changes.
    assert!(react(s, &m.id, &alice.id, "👍", false, 16).await.is_none());
    assert!(react(s, &m.id, &bob.id, "🔥", false, 16).await.is_none());
    assert_eq!(last_pos(s, &r.id).await, 7);
    // The last reaction of an emoji removes its group.
    let r6 = react(s, &m.id, &bob.id, "🎉", false, 17).await.unwrap();
    assert_eq!(
        reactions(&r6),
        want(&[("👍", &[&carol.id]), ("❤️", &[&alice.id])])
    );
    // Coming back puts one at the end of the group.
    let r7 = react(s, &m.id, &alice.id, "👍", true, 18).await.unwrap();
    assert_eq!((r7.seq, r7.pos), (1, 9));
    assert_eq!(
        reactions(&r7),
        want(&[("👍", &[&carol.id, &alice.id]), ("❤️", &[&alice.id])])
    );
    assert_eq!(counters(s, &r.id).await, (2, 9));

    // Every read carries the reactions.
    assert_eq!(s.message(&m.id).await.unwrap(), r7);
    let page = s.history(&r.id, HistoryCursor::Latest, 10).await.unwrap();
    assert_eq!(page.messages[0], r7);
    assert!(page.messages[1].reactions.is_empty());
    let c = b.node2.changes_since(&r.id, 8, 100).await.unwrap();
    assert_eq!(c.messages, vec![r7.clone()]);
    assert!(s.message(&other.id).await.unwrap().reactions.is_empty());

    assert_err!(
        s.react("no-such-message", &alice.id, "👍", true, 20).await,
        StoreError::NotFound
    );
    // A tombstone has no reactions and takes none.
    let d = s.delete_message(&m.id).await.unwrap();
    assert!(d.reactions.is_empty());
    let before = counters(s, &r.id).await;
    assert_err!(
        s.react(&m.id, &bob.id, "👍", true, 21).await,
        StoreError::NotFound
    );
    assert_err!(
        s.react(&m.id, &carol.id, "👍", false, 21).await,
        StoreError::NotFound
    );
    assert_err!(s.set_pinned(&m.id, true).await, StoreError::NotFound);
    assert_err!(s.set_pinned(&m.id, false).await, StoreError::NotFound);
    assert_eq!(
        counters(s, &r.id).await,
        before,
        "refused changes take no pos"
    );
    let page = s.history(&r.id, HistoryCursor::Latest, 10).await.unwrap();
    assert!(page.messages[0].deleted && page.messages[0].reactions.is_empty());
}

pub async fn pins_set_unset_and_list(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let elsewhere = room(s, "elsewhere", Some(&alice.id)).await;
    let m1 = post(s, &r.id, &alice.id, "one").await;
    let m2 = post(s, &r.id, &alice.id, "two").await;
    let m3 = post(s, &r.id, &alice.id, "three").await;
    assert!(s.pins(&r.id).await.unwrap().is_empty());

    let p2 = s.set_pinned(&m2.id, true).await.unwrap().expect("a change");
    assert!(p2.pinned);
    assert_eq!((p2.seq, p2.pos), (2, 4));
    assert_eq!(s.message(&m2.id).await.unwrap(), p2);
    assert!(s.set_pinned(&m2.id, true).await.unwrap().is_none());
    assert!(s.set_pinned(&m3.id, false).await.unwrap().is_none());
    assert_eq!(counters(s, &r.id).await, (3, 4), "no-ops take no pos");

    react(s, &m1.id, &bob.id, "📌", true, 5).await.unwrap(); // pos 5
    let p1 = s.set_pinned(&m1.id, true).await.unwrap().unwrap();
    assert_eq!(p1.pos, 6);
    let e = post(s, &elsewhere.id, &alice.id, "pinned elsewhere").await;
    s.set_pinned(&e.id, true).await.unwrap().unwrap();
    // Newest first, with their reactions.
    let pins = s.pins(&r.id).await.unwrap();
    assert_eq!(pins, vec![p2.clone(), p1.clone()]);
    assert_eq!(reactions(&pins[1]), want(&[("📌", &[&bob.id])]));
    assert_eq!(ids(&b.node2.pins(&elsewhere.id).await.unwrap()), vec![e.id]);

    let u2 = s.set_pinned(&m2.id, false).await.unwrap().unwrap();
    assert!(!u2.pinned);
    assert_eq!(u2.pos, 7);
    assert_eq!(ids(&s.pins(&r.id).await.unwrap()), vec![m1.id.clone()]);
    // Deleting unpins.
    let d = s.delete_message(&m1.id).await.unwrap();
    assert!(!d.pinned);
    assert!(s.pins(&r.id).await.unwrap().is_empty());
    assert_err!(
        s.set_pinned("no-such-message", true).await,
        StoreError::NotFound
    );
    assert!(s.pins("no-such-room").await.unwrap().is_empty());
    assert_eq!(counters(s, &r.id).await, (3, 8));
}

// --- threads ---

pub async fn thread_pages(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let root = post(s, &r.id, &alice.id, "root").await;
    let other_root = post(s, &r.id, &alice.id, "other root").await;
    let reply = |root_id: String, body: String| {
        let mut nm = new_msg(&r.id, &alice.id, &body);
        nm.thread_root = Some(root_id);
        async move { created(s.insert_message(nm).await.expect("reply")) }
    };
    let mut replies = Vec::new();
    for i in 0..5 {
        replies.push(reply(root.id.clone(), format!("reply {i}")).await);
        if i == 2 {
            // Other messages in between never show up in the thread.
            post(s, &r.id, &alice.id, "plain").await;
            reply(other_root.id.clone(), "elsewhere".into()).await;
        }
    }
    assert_eq!(s.message(&root.id).await.unwrap().reply_count, 5);
    react(s, &replies[1].id, &alice.id, "👀", true, 9)
        .await
        .unwrap();
    let replies: Vec<MessageRecord> = {
        let mut v = Vec::new();
        for m in &replies {
            v.push(s.message(&m.id).await.unwrap());
        }
        v
    };

    let page = s.thread(&root.id, None, 2).await.unwrap();
    assert_eq!(
        page.messages,
        replies[0..2].to_vec(),
        "the root is not a reply"
    );
    assert!(page.has_more);
    assert_eq!(reactions(&page.messages[1]), want(&[("👀", &[&alice.id])]));
    let page = s.thread(&root.id, Some(replies[1].seq), 2).await.unwrap();
    assert_eq!(ids(&page.messages), ids(&replies[2..4]));
    assert!(page.has_more);
    let page = b
        .node2
        .thread(&root.id, Some(replies[3].seq), 2)
        .await
        .unwrap();
    assert_eq!(ids(&page.messages), ids(&replies[4..]));
    assert!(!page.has_more);
    let page = s.thread(&root.id, None, 5).await.unwrap();
    assert_eq!(ids(&page.messages), ids(&replies));
    assert!(!page.has_more, "exactly limit replies is not more");
    let page = s.thread(&root.id, None, 100).await.unwrap();
    assert_eq!(seqs(&page.messages), seqs(&replies));
    assert!(!page.has_more);
    let page = s.thread(&root.id, Some(replies[4].seq), 10).await.unwrap();
    assert!(page.messages.is_empty() && !page.has_more);

    // A deleted reply stays in the thread as a tombstone (as in history).
    s.delete_message(&replies[2].id).await.unwrap();
    let page = s.thread(&root.id, None, 100).await.unwrap();
    assert_eq!(page.messages.len(), 5);
    assert!(page.messages[2].deleted);
    let other = s.thread(&other_root.id, None, 10).await.unwrap();
    assert_eq!(other.messages.len(), 1);
    assert_eq!(other.messages[0].body, "elsewhere");
    let none = s.thread("no-such-message", None, 10).await.unwrap();
    assert!(none.messages.is_empty() && !none.has_more);
}

// --- mentions and notification levels ---

pub async fn mention_counts(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let carol = account(s, "carol").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let r2 = room(s, "other", Some(&alice.id)).await;
    for u in [&bob, &carol] {
        s.add_member(&r.id, &u.id, Role::Member, 1).await.unwrap();
    }
    s.add_member(&r2.id, &bob.id, Role::Member, 1)
        .await
        .unwrap();
    let mentioning = |room_id: &str, body: &str, users: &[&UserRecord]| {
        let mut nm = new_msg(room_id, &alice.id, body);
        nm.mentions = users.iter().map(|u| u.id.clone()).collect();
        nm
    };
    let counts = || async {
        (
            mention_count(s, &bob.id, &r.id).await,
            mention_count(s, &carol.id, &r.id).await,
        )
    };

    // Repeated mentions count once.
    let m1 = created(
        s.insert_message(mentioning(&r.id, "@bob @bob", &[&bob, &bob]))
            .await
            .unwrap(),
    );
    assert_eq!(counts().await, (1, 0));
    assert_eq!(mention_count(s, &alice.id, &r.id).await, 0);
    let mut nm = mentioning(&r.id, "@bob @carol", &[&bob, &carol]);
    nm.mentions.push("not-a-member".into());
    let m2 = created(s.insert_message(nm).await.unwrap());
    assert_eq!(counts().await, (2, 1));
    post(s, &r.id, &alice.id, "nobody").await;
    assert_eq!(counts().await, (2, 1));
    // Another room's mentions count there.
    created(
        s.insert_message(mentioning(&r2.id, "@bob", &[&bob]))
            .await
            .unwrap(),
    );
    assert_eq!(counts().await, (2, 1));
    assert_eq!(mention_count(s, &bob.id, &r2.id).await, 1);

    // Reading resets what was read.
    s.mark_read(&r.id, &bob.id, m1.seq).await.unwrap();
    s.mark_read(&r.id, &carol.id, m1.seq).await.unwrap();
    assert_eq!(counts().await, (1, 1));
    // An edit rewrites the mentions.
    let e = s
        .edit_message(&m2.id, "@carol", "x", std::slice::from_ref(&carol.id), 50)
        .await
        .unwrap();
    assert_eq!(e.mentions, vec![carol.id.clone()]);
    assert_eq!(counts().await, (0, 1));
    s.edit_message(
        &m2.id,
        "@bob @carol",
        "x",
        &[bob.id.clone(), carol.id.clone()],
        51,
    )
    .await
    .unwrap();
    assert_eq!(counts().await, (1, 1));
    // A deletion takes them away.
    s.delete_message(&m2.id).await.unwrap();
    assert_eq!(counts().await, (0, 0));
    created(
        s.insert_message(mentioning(&r.id, "@bob", &[&bob]))
            .await
            .unwrap(),
    );
    assert_eq!(counts().await, (1, 0));
    // Posting reads the room up to one's own message.
    post(s, &r.id, &bob.id, "I'm here").await;
    assert_eq!(counts().await, (0, 0));
    created(
        s.insert_message(mentioning(&r.id, "@bob @carol", &[&bob, &carol]))
            .await
            .unwrap(),
    );
    assert_eq!(counts().await, (1, 1));
    s.mark_read(&r.id, &bob.id, 1_000).await.unwrap();
    assert_eq!(counts().await, (0, 1));
}

pub async fn notification_levels_explicit_and_given(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let carol = account(s, "carol").await;
    let dave = account(s, "dave").await;
    let r = room(s, "room", Some(&alice.id)).await;
    for u in [&bob, &carol] {
        s.add_member(&r.id, &u.id, Role::Member, 1).await.unwrap();
    }
    let sorted = |mut v: Vec<(String, Option<String>)>| {
        v.sort();
        v
    };
    let level = |u: &UserRecord, l: Option<&str>| (u.id.clone(), l.map(str::to_string));

    assert!(s.notification_levels(&r.id, None).await.unwrap().is_empty());
    s.set_notification_level(&r.id, &bob.id, "all")
        .await
        .unwrap();
    s.set_notification_level(&r.id, &carol.id, "none")
        .await
        .unwrap();
    assert_eq!(
        sorted(s.notification_levels(&r.id, None).await.unwrap()),
        sorted(vec![level(&bob, Some("all")), level(&carol, Some("none"))])
    );
    // Given users: members only, with None for the default.
    let given = vec![alice.id.clone(), bob.id.clone(), dave.id.clone()];
    assert_eq!(
        sorted(
            b.node2
                .notification_levels(&r.id, Some(&given))
                .await
                .unwrap()
        ),
        sorted(vec![level(&alice, None), level(&bob, Some("all"))])
    );
    assert!(
        s.notification_levels(&r.id, Some(&[]))
            .await
            .unwrap()
            .is_empty()
    );
    s.set_notification_level(&r.id, &bob.id, "mentions")
        .await
        .unwrap();
    assert_eq!(
        s.membership(&r.id, &bob.id)
            .await
            .unwrap()
            .notification_level
            .as_deref(),
        Some("mentions")
    );
    assert_eq!(
        s.notification_levels(&r.id, Some(std::slice::from_ref(&bob.id)))
            .await
            .unwrap(),
        vec![level(&bob, Some("mentions"))]
    );
    assert_err!(
        s.set_notification_level(&r.id, &dave.id, "all").await,
        StoreError::NotFound
    );
    assert_err!(
        s.set_notification_level("no-such-room", &bob.id, "all")
            .await,
        StoreError::NotFound
    );
    assert!(
        s.notification_levels("no-such-room", None)
            .await
            .unwrap()
            .is_empty()
    );
}

// --- DMs ---

pub async fn dms_find_create_and_conflict(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let carol = account(s, "carol").await;
    let key = dm_key(&[&alice, &bob]);
    assert!(s.dm_by_key(&key).await.unwrap().is_none());

    let dm = s
        .create_dm(new_dm(&alice.id), &key, &[alice.id.clone(), bob.id.clone()])
        .await
        .unwrap();
    assert_eq!(dm.kind, RoomKind::Dm);
    assert_eq!(dm.dm_key.as_deref(), Some(key.as_str()));
    assert_eq!(dm.member_count, 2);
    assert_eq!((dm.last_seq, dm.last_pos), (0, 0));
    assert_eq!(dm.created_by.as_deref(), Some(alice.id.as_str()));
    assert!(dm.guests_allowed && !dm.is_default);
    assert_eq!(s.dm_by_key(&key).await.unwrap(), Some(dm.clone()));
    assert_eq!(b.node2.dm_by_key(&key).await.unwrap(), Some(dm.clone()));
    assert_eq!(s.room(&dm.id).await.unwrap(), dm);
    for u in [&alice, &bob] {
        let m = s.membership(&dm.id, &u.id).await.unwrap();
        assert_eq!((m.role, m.joined_at), (Role::Member, dm.created_at));
    }
    assert_err!(s.membership(&dm.id, &carol.id).await, StoreError::NotFound);
    assert!(
        s.joined_rooms(&bob.id)
            .await
            .unwrap()
            .iter()
            .any(|j| j.room.id == dm.id)
    );
    assert!(
        s.public_rooms()
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != dm.id),
        "DMs are not public"
    );

    // The key is unique: the second creation stores nothing.
    let again = new_dm(&bob.id);
    let again_id = again.id.clone();
    assert_err!(
        s.create_dm(again, &key, &[alice.id.clone(), bob.id.clone()])
            .await,
        StoreError::Conflict(_)
    );
    assert_err!(s.room(&again_id).await, StoreError::NotFound);
    assert_eq!(
        s.all_rooms()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.kind == RoomKind::Dm)
            .count(),
        1
    );
    // Another set of participants is another DM.
    let key3 = dm_key(&[&alice, &bob, &carol]);
    let dm3 = s
        .create_dm(
            new_dm(&carol.id),
            &key3,
            &[alice.id.clone(), bob.id.clone(), carol.id.clone()],
        )
        .await
        .unwrap();
    assert_eq!(dm3.member_count, 3);
    assert_ne!(dm3.id, dm.id);
    assert_eq!(s.dm_by_key(&key3).await.unwrap().unwrap().id, dm3.id);
    assert_eq!(s.dm_by_key(&key).await.unwrap().unwrap().id, dm.id);
}

pub async fn concurrent_create_dm_makes_one(b: Backend) {
    const TASKS: usize = 8;
    let s = b.store.clone();
    let alice = account(&*s, "alice").await;
    warm_up(&b).await;
    for round in 0..5 {
        let other = account(&*s, &format!("friend{round}")).await;
        let key = dm_key(&[&alice, &other]);
        let members = vec![alice.id.clone(), other.id.clone()];
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (node, barrier, key, members) =
                    (b.node(t), barrier.clone(), key.clone(), members.clone());
                let creator = members[t % 2].clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    node.create_dm(new_dm(&creator), &key, &members).await
                })
            })
            .collect();
        let mut made = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(room) => made.push(room),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("round {round}: create_dm failed: {e:?}"),
            }
        }
        assert_eq!(made.len(), 1, "round {round}: exactly one DM");
        let found = b.node2.dm_by_key(&key).await.unwrap().expect("the DM");
        assert_eq!(found, made[0]);
        assert_eq!(found.member_count, 2);
        assert_eq!(s.members(&found.id, None, 10).await.unwrap().len(), 2);
    }
    let dms = s.all_rooms().await.unwrap();
    assert_eq!(dms.len(), 5, "no room left over from the losers");
}

// --- search ---

pub async fn search_scope_filters_and_snippets(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let carol = account(s, "carol").await;
    let r1 = room(s, "one", Some(&alice.id)).await;
    let r2 = room(s, "two", Some(&alice.id)).await;
    let mut hidden = new_room("hidden", RoomKind::Private);
    hidden.created_by = Some(carol.id.clone());
    let r3 = s.create_room(hidden, Some(&carol.id)).await.unwrap();
    s.add_member(&r1.id, &bob.id, Role::Member, 1)
        .await
        .unwrap();

    let quick = post(s, &r1.id, &alice.id, "The Quick brown FOX jumps").await;
    let lazy = post(s, &r1.id, &bob.id, "a lazy dog sleeps near the fox").await;
    let foxes = post(s, &r1.id, &alice.id, "foxes are clever").await;
    let triple = post(s, &r1.id, &alice.id, "fox fox fox").await;
    let unrelated = post(s, &r1.id, &alice.id, "unrelated words here").await;
    let two = post(s, &r2.id, &alice.id, "another fox in room two").await;
    let secret = post(s, &r3.id, &carol.id, "secret fox den").await;
    let code = post(
        s,
        &r1.id,
        &bob.id,
        "call foo_bar() or mail x@example.com, pi is 3.14",
    )
    .await;

    // Only rooms the searcher is a member of; the last term is a prefix.
    let all_fox = hits(s, &alice.id, &["fox"], None, None).await;
    assert_eq!(
        hit_ids(&all_fox),
        id_set(&[&quick, &lazy, &foxes, &triple, &two])
    );
    assert_eq!(all_fox[0].message.id, triple.id, "best first");
    assert_eq!(
        hit_ids(&hits(s, &bob.id, &["fox"], None, None).await),
        id_set(&[&quick, &lazy, &foxes, &triple])
    );
    assert_eq!(
        hit_ids(&hits(s, &carol.id, &["fox"], None, None).await),
        id_set(&[&secret])
    );
    // Every term must match; only the last one is a prefix.
    assert_eq!(
        hit_ids(&hits(s, &alice.id, &["fox", "jumps"], None, None).await),
        id_set(&[&quick])
    );
    assert_eq!(
        hit_ids(&hits(s, &alice.id, &["quick", "bro"], None, None).await),
        id_set(&[&quick])
    );
    assert!(
        hits(s, &alice.id, &["fox", "clever"], None, None)
            .await
            .is_empty()
    );
    assert_eq!(
        hit_ids(&hits(s, &alice.id, &["foxes", "clev"], None, None).await),
        id_set(&[&foxes])
    );
    assert!(
        hits(s, &alice.id, &["fo", "jumps"], None, None)
            .await
            .is_empty()
    );
    // Words are cut at punctuation; underscores join parts of a phrase.
    for ts in [
        &["foo_bar"][..],
        &["foo_ba"],
        &["foo"],
        &["bar"],
        &["example"],
        &["x", "example", "com"],
        &["14"],
        &["pi", "3"],
    ] {
        assert_eq!(
            hit_ids(&hits(s, &alice.id, ts, None, None).await),
            id_set(&[&code]),
            "terms {ts:?}"
        );
    }
    assert!(
        hits(s, &alice.id, &["bar_foo"], None, None)
            .await
            .is_empty()
    );

    // Filters.
    assert_eq!(
        hit_ids(&hits(s, &alice.id, &["fox"], Some(&r2.id), None).await),
        id_set(&[&two])
    );
    assert!(
        hits(s, &alice.id, &["fox"], Some(&r3.id), None)
            .await
            .is_empty(),
        "not a member there"
    );
    assert_eq!(
        hit_ids(&hits(s, &alice.id, &["fox"], None, Some(&bob.id)).await),
        id_set(&[&lazy])
    );
    assert_eq!(
        hit_ids(&hits(s, &alice.id, &["fox"], Some(&r1.id), Some(&alice.id)).await),
        id_set(&[&quick, &foxes, &triple])
    );
    // The limit keeps the best.
    let two_best = s
        .search(&alice.id, &terms(&["fox"]), None, None, 2)
        .await
        .unwrap();
    assert_eq!(two_best.len(), 2);
    assert_eq!(two_best[0].message.id, triple.id);

    // Snippets mark the matches (whole words, also for a prefix).
    let snip = |hs: &[SearchHit], m: &MessageRecord| {
        hs.iter()
            .find(|h| h.message.id == m.id)
            .expect("hit")
            .snippet
            .clone()
    };
    let mark = |w: &str| format!("{SNIPPET_START}{w}{SNIPPET_END}");
    assert!(
        snip(&all_fox, &quick).contains(&mark("FOX")),
        "{:?}",
        snip(&all_fox, &quick)
    );
    assert!(snip(&all_fox, &foxes).contains(&mark("foxes")));
    assert!(snip(&all_fox, &quick).contains("Quick brown"));
    let h = hits(s, &alice.id, &["quick", "jum"], None, None).await;
    assert!(h[0].snippet.contains(&mark("Quick")) && h[0].snippet.contains(&mark("jumps")));
    // Hits carry the message as any read does.
    react(s, &quick.id, &bob.id, "🦊", true, 9).await.unwrap();
    let h = hits(s, &bob.id, &["jumps"], None, None).await;
    assert_eq!(h[0].message, s.message(&quick.id).await.unwrap());
    // A long body gives a short fragment around the match, cut with ellipses.
    let words: Vec<String> = (0..60)
        .map(|i| {
            if i == 30 {
                "needle".to_string()
            } else {
                format!("w{i}")
            }
        })
        .collect();
    let long = post(s, &r1.id, &alice.id, &words.join(" ")).await;
    let h = hits(s, &alice.id, &["needle"], None, None).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].message.id, long.id);
    let sn = &h[0].snippet;
    assert!(sn.contains(&mark("needle")), "{sn:?}");
    assert!(sn.chars().count() < long.body.chars().count() / 2, "{sn:?}");
    assert!(sn.starts_with('…') && sn.ends_with('…'), "{sn:?}");

    // Edits are searched as edited; deleted messages are not searched.
    s.edit_message(&unrelated.id, "now about a fox", "x", &[], 5)
        .await
        .unwrap();
    assert!(
        hits(s, &alice.id, &["unrelated"], None, None)
            .await
            .is_empty()
    );
    assert!(hit_ids(&hits(s, &alice.id, &["fox"], None, None).await).contains(&unrelated.id));
    s.delete_message(&foxes.id).await.unwrap();
    assert!(hits(s, &alice.id, &["clever"], None, None).await.is_empty());
    assert!(!hit_ids(&hits(s, &alice.id, &["fox"], None, None).await).contains(&foxes.id));
    // Leaving a room leaves its messages out.
    s.remove_member(&r1.id, &bob.id).await.unwrap();
    assert!(hits(s, &bob.id, &["fox"], None, None).await.is_empty());
    assert!(hits(s, "nobody", &["fox"], None, None).await.is_empty());
}

pub async fn search_odd_terms_are_harmless(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let fox = post(s, &r.id, &alice.id, "the fox and the hound, or not").await;
    post(s, &r.id, &alice.id, "ünïcödé text with 日本語 plus ½ too").await;
    let long = "x".repeat(3_000);
    let odd: Vec<Vec<&str>> = vec![
        vec![],
        vec![""],
        vec!["___"],
        vec!["_"],
        vec!["\""],
        vec!["'"],
        vec!["''"],
        vec!["\\"],
        vec!["*"],
        vec![":*"],
        vec!["a:*"],
        vec!["fox:*", "&"],
        vec!["and"],
        vec!["or"],
        vec!["not"],
        vec!["near"],
        vec!["AND"],
        vec!["(", ")"],
        vec!["&", "|", "!"],
        vec!["<->"],
        vec!["<2>"],
        vec!["null"],
        vec!["the", "a", "of"],
        vec!["ünïcödé"],
        vec!["日本語"],
        vec!["½"],
        vec![long.as_str()],
        vec!["fox", "___"],
    ];
    for ts in &odd {
        if let Err(e) = s.search(&alice.id, &terms(ts), None, None, 10).await {
            panic!("search {ts:?} failed: {e:?}");
        }
    }
    if b.kind == Kind::Postgres {
        // A NUL cannot even be sent to PostgreSQL. (SQLite's FTS5 rejects it too, with
        // "unterminated string"; the domain's term splitting never lets one through.)
        hits(s, &alice.id, &["x\u{0}y"], None, None).await;
    }
    assert!(hits(s, &alice.id, &[], None, None).await.is_empty());
    assert!(hits(s, &alice.id, &["___"], None, None).await.is_empty());
    // A term without any word in it is left out, like an empty one.
    assert_eq!(
        hit_ids(&hits(s, &alice.id, &["fox", "___"], None, None).await),
        id_set(&[&fox])
    );
    // Query syntax words are plain words.
    for w in ["and", "or", "not"] {
        assert_eq!(
            hit_ids(&hits(s, &alice.id, &[w], None, None).await),
            id_set(&[&fox]),
            "{w}"
        );
    }
    assert_eq!(hits(s, &alice.id, &["ünïcödé"], None, None).await.len(), 1);
    assert_eq!(hits(s, &alice.id, &["日本語"], None, None).await.len(), 1);
    assert_eq!(
        s.search(&alice.id, &terms(&["fox"]), None, None, 0)
            .await
            .unwrap()
            .len(),
        0
    );
}

// --- attachments ---

pub async fn attachments_claim_and_cleanup(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let r = room(s, "room", Some(&alice.id)).await;
    s.add_member(&r.id, &bob.id, Role::Member, 1).await.unwrap();

    let a1 = upload(&alice.id, 100, "s1", Some("t1"));
    assert_eq!(s.create_attachment(a1.clone()).await.unwrap(), a1);
    let a2 = s
        .create_attachment(upload(&alice.id, 101, "s2", None))
        .await
        .unwrap();
    let b1 = s
        .create_attachment(upload(&bob.id, 102, "s1", None))
        .await
        .unwrap();
    let a3 = s
        .create_attachment(upload(&alice.id, 103, "s3", None))
        .await
        .unwrap();
    let mut dup = upload(&alice.id, 104, "s9", None);
    dup.id = a1.id.clone();
    assert_err!(s.create_attachment(dup).await, StoreError::Conflict(_));
    assert_eq!(
        sorted_by_id(
            s.attachments(&[a1.id.clone(), a2.id.clone(), "nope".into()])
                .await
                .unwrap()
        ),
        sorted_by_id(vec![a1.clone(), a2.clone()])
    );
    assert!(s.attachments(&[]).await.unwrap().is_empty());

    // A send takes the uploads, listed in upload order.
    let mut nm = new_msg(&r.id, &alice.id, "two files");
    nm.attachment_ids = vec![a2.id.clone(), a1.id.clone()];
    nm.client_id = Some("c-files".into());
    let m = created(s.insert_message(nm.clone()).await.unwrap());
    assert_eq!(
        m.attachments,
        vec![claimed(&a1, &m.id), claimed(&a2, &m.id)]
    );
    assert_eq!(s.message(&m.id).await.unwrap(), m);
    assert_eq!(b.node2.message(&m.id).await.unwrap(), m);
    let page = s.history(&r.id, HistoryCursor::Latest, 10).await.unwrap();
    assert_eq!(page.messages, vec![m.clone()]);
    assert_eq!(
        s.attachments(std::slice::from_ref(&a1.id)).await.unwrap(),
        vec![claimed(&a1, &m.id)]
    );
    // A retry of that send finds the message, not a conflict.
    nm.id = uid();
    match s.insert_message(nm).await.unwrap() {
        Inserted::Existing(e) => assert_eq!(e, m),
        Inserted::Created { message, .. } => panic!("stored a duplicate {}", message.id),
    }

    // Refused claims store nothing at all.
    let before = counters(s, &r.id).await;
    let refused = |author: &UserRecord, ids: Vec<String>| {
        let mut nm = new_msg(&r.id, &author.id, "refused");
        nm.attachment_ids = ids;
        nm.mentions = vec![alice.id.clone(), bob.id.clone()];
        nm
    };
    let attempts = [
        refused(&bob, vec![b1.id.clone(), a3.id.clone()]), // someone else's
        refused(&alice, vec![a1.id.clone()]),              // already used
        refused(&alice, vec![a3.id.clone(), a1.id.clone()]),
        refused(&alice, vec!["no-such-upload".into()]),
        refused(&alice, vec![a3.id.clone(), a3.id.clone()]), // listed twice
    ];
    for nm in attempts {
        let id = nm.id.clone();
        assert_err!(s.insert_message(nm).await, StoreError::Conflict(_));
        assert_err!(s.message(&id).await, StoreError::NotFound);
    }
    assert_eq!(counters(s, &r.id).await, before, "no seq or pos used");
    assert_eq!(mention_count(s, &bob.id, &r.id).await, 0, "no mention rows");
    assert_eq!(
        sorted_by_id(
            s.attachments(&[b1.id.clone(), a3.id.clone()])
                .await
                .unwrap()
        ),
        sorted_by_id(vec![b1.clone(), a3.clone()]),
        "still unsent"
    );
    let mut nm = new_msg(&r.id, &bob.id, "mine");
    nm.attachment_ids = vec![b1.id.clone()];
    let mb = created(s.insert_message(nm).await.unwrap());
    assert_eq!(mb.attachments, vec![claimed(&b1, &mb.id)]);
    assert_eq!((mb.seq, mb.pos), (before.0 + 1, before.1 + 1));

    for (sha, used) in [
        ("s1", true),
        ("t1", true),
        ("s2", true),
        ("s3", true),
        ("s9", false),
    ] {
        assert_eq!(s.blob_in_use(sha).await.unwrap(), used, "{sha}");
    }
    // A deleted message lets go of its files.
    let d = s.delete_message(&m.id).await.unwrap();
    assert!(d.attachments.is_empty());
    assert!(
        s.attachments(&[a1.id.clone(), a2.id.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    for (sha, used) in [("s1", true), ("t1", false), ("s2", false)] {
        assert_eq!(
            s.blob_in_use(sha).await.unwrap(),
            used,
            "{sha} after delete"
        );
    }

    // Old unsent uploads are swept; sent and recent ones stay.
    let old = s
        .create_attachment(upload(&alice.id, 50, "s4", Some("t4")))
        .await
        .unwrap();
    let recent = s
        .create_attachment(upload(&alice.id, 500, "s5", None))
        .await
        .unwrap();
    let gone = s.delete_unsent_attachments(200).await.unwrap();
    assert_eq!(
        sorted_by_id(gone),
        sorted_by_id(vec![a3.clone(), old.clone()])
    );
    assert!(s.delete_unsent_attachments(200).await.unwrap().is_empty());
    assert_eq!(
        sorted_by_id(
            s.attachments(&[recent.id.clone(), b1.id.clone(), old.id.clone()])
                .await
                .unwrap()
        ),
        sorted_by_id(vec![recent.clone(), claimed(&b1, &mb.id)])
    );
    for (sha, used) in [("s3", false), ("s4", false), ("t4", false), ("s5", true)] {
        assert_eq!(s.blob_in_use(sha).await.unwrap(), used, "{sha} after sweep");
    }
    // A swept upload can no longer be sent.
    let mut nm = new_msg(&r.id, &alice.id, "too late");
    nm.attachment_ids = vec![old.id.clone()];
    assert_err!(s.insert_message(nm).await, StoreError::Conflict(_));
}

// --- concurrency (on PostgreSQL across two nodes) ---

pub async fn concurrent_reactions_pins_and_claims(b: Backend) {
    const TASKS: usize = 8;
    let s = b.store.clone();
    let alice = account(&*s, "alice").await;
    let r = room(&*s, "busy", Some(&alice.id)).await;
    let mut users = Vec::new();
    for i in 0..TASKS {
        let u = account(&*s, &format!("fan{i}")).await;
        s.add_member(&r.id, &u.id, Role::Member, 1).await.unwrap();
        users.push(u.id);
    }
    let m = post(&*s, &r.id, &alice.id, "popular").await;
    warm_up(&b).await;

    // Different reactions at once: each takes its own pos, none is lost.
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (node, barrier, mid, user) =
                (b.node(t), barrier.clone(), m.id.clone(), users[t].clone());
            tokio::spawn(async move {
                barrier.wait().await;
                node.react(&mid, &user, "👍", true, 100 + t as i64).await
            })
        })
        .collect();
    let mut pos = Vec::new();
    for t in tasks {
        pos.push(t.await.unwrap().expect("react").expect("a change").pos);
    }
    pos.sort_unstable();
    assert_eq!(pos, (2..=1 + TASKS as i64).collect::<Vec<_>>());
    let now = s.message(&m.id).await.unwrap();
    assert_eq!(reactions(&now), vec![("👍".to_string(), users.clone())]);

    // The same reaction, or the same pin, at once: one change.
    for round in 0..2 {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (node, barrier, mid, user) =
                    (b.node(t), barrier.clone(), m.id.clone(), users[0].clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    if round == 0 {
                        node.react(&mid, &user, "🎉", true, 200).await
                    } else {
                        node.set_pinned(&mid, true).await
                    }
                })
            })
            .collect();
        let mut changes = 0;
        for t in tasks {
            changes += usize::from(t.await.unwrap().expect("no error").is_some());
        }
        assert_eq!(changes, 1, "round {round}: exactly one change");
    }
    let p = 1 + TASKS as i64 + 2;
    assert_eq!(counters(&*s, &r.id).await, (1, p));

    // Sends racing for one upload: one takes it, the others store nothing.
    let up = s
        .create_attachment(upload(&alice.id, 1, "shared", None))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (node, barrier) = (b.node(t), barrier.clone());
            let mut nm = new_msg(&r.id, &alice.id, &format!("take {t}"));
            nm.attachment_ids = vec![up.id.clone()];
            tokio::spawn(async move {
                barrier.wait().await;
                node.insert_message(nm).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(i) => winners.push(created(i)),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("insert failed: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!((winners[0].seq, winners[0].pos), (2, p + 1));
    assert_eq!(winners[0].attachments, vec![claimed(&up, &winners[0].id)]);
    assert_eq!(counters(&*s, &r.id).await, (2, p + 1));
    let c = b.node2.changes_since(&r.id, 0, 100).await.unwrap();
    assert_eq!(ids(&c.messages), vec![m.id.clone(), winners[0].id.clone()]);
    assert_eq!(c.pos, p + 1);
}

// --- export / import ---

/// A user's joined rooms as (room, unread, mentions).
type Joined = Vec<(String, i64, i64)>;
/// A room's explicit notification levels.
type Levels = Vec<(String, Option<String>)>;

#[derive(Debug, PartialEq)]
struct Dump {
    users: Vec<UserRecord>,
    avatars: Vec<(String, String, Vec<u8>)>,
    rooms: Vec<RoomRecord>,
    members: Vec<(UserRecord, MemberRecord)>,
    messages: Vec<MessageRecord>,
    joined: Vec<(String, Joined)>,
    levels: Vec<(String, Levels)>,
}

/// Everything, through the read API (small pages on purpose).
async fn export(s: &dyn Store) -> Dump {
    let users = s.all_users().await.unwrap();
    let mut hashes: Vec<String> = users.iter().filter_map(|u| u.avatar_hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    let mut avatars = Vec::new();
    for h in hashes {
        let (ct, data) = s.avatar(&h).await.unwrap();
        avatars.push((h, ct, data));
    }
    let rooms = s.all_rooms().await.unwrap();
    let (mut members, mut messages, mut levels) = (Vec::new(), Vec::new(), Vec::new());
    for r in &rooms {
        let mut after: Option<String> = None;
        loop {
            let page = s.members(&r.id, after.as_deref(), 2).await.unwrap();
            after = page.last().map(|e| e.user.id.clone());
            members.extend(page.iter().map(|e| (e.user.clone(), e.member.clone())));
            if page.len() < 2 {
                break;
            }
        }
        let mut seq = 0;
        loop {
            let page = s
                .history(&r.id, HistoryCursor::After(seq), 3)
                .await
                .unwrap();
            seq = page.messages.last().map_or(seq, |m| m.seq);
            messages.extend(page.messages);
            if !page.has_more {
                break;
            }
        }
        let mut l = s.notification_levels(&r.id, None).await.unwrap();
        l.sort();
        levels.push((r.id.clone(), l));
    }
    let mut joined = Vec::new();
    for u in &users {
        let j = s.joined_rooms(&u.id).await.unwrap();
        joined.push((
            u.id.clone(),
            j.iter()
                .map(|j| (j.room.id.clone(), j.unread_count, j.mention_count))
                .collect(),
        ));
    }
    Dump {
        users,
        avatars,
        rooms,
        members,
        messages,
        joined,
        levels,
    }
}

async fn import(t: &dyn Store, d: &Dump) {
    for u in &d.users {
        t.import_user(u).await.expect("import_user");
    }
    for (h, ct, data) in &d.avatars {
        t.import_avatar(h, ct, data).await.expect("import_avatar");
    }
    for r in &d.rooms {
        t.import_room(r).await.expect("import_room");
    }
    for (_, m) in &d.members {
        t.import_member(m).await.expect("import_member");
    }
    for m in &d.messages {
        t.import_message(m).await.expect("import_message");
    }
}

fn assert_dumps_equal(a: &Dump, b: &Dump, what: &str) {
    assert_eq!(a.users, b.users, "{what}: users");
    assert_eq!(a.avatars, b.avatars, "{what}: avatars");
    assert_eq!(a.rooms, b.rooms, "{what}: rooms");
    assert_eq!(a.members, b.members, "{what}: members");
    assert_eq!(a.messages.len(), b.messages.len(), "{what}: message count");
    for (x, y) in a.messages.iter().zip(&b.messages) {
        assert_eq!(x.id, y.id, "{what}: message order");
        assert_eq!(
            (x.seq, x.pos, &x.room_id, x.created_at, x.edited_at),
            (y.seq, y.pos, &y.room_id, y.created_at, y.edited_at),
            "{what}: message {} counters",
            x.id
        );
        assert_eq!(x.author, y.author, "{what}: message {} author", x.id);
        assert_eq!(
            (&x.body, &x.html),
            (&y.body, &y.html),
            "{what}: {} text",
            x.id
        );
        assert_eq!(
            (
                x.deleted,
                x.pinned,
                &x.reply_to,
                &x.thread_root,
                x.reply_count,
                &x.client_id
            ),
            (
                y.deleted,
                y.pinned,
                &y.reply_to,
                &y.thread_root,
                y.reply_count,
                &y.client_id
            ),
            "{what}: message {} flags",
            x.id
        );
        assert_eq!(x.mentions, y.mentions, "{what}: message {} mentions", x.id);
        assert_eq!(
            x.reactions, y.reactions,
            "{what}: message {} reactions",
            x.id
        );
        assert_eq!(
            x.attachments, y.attachments,
            "{what}: message {} attachments",
            x.id
        );
        assert_eq!(x, y, "{what}: message {}", x.id);
    }
    assert_eq!(a.joined, b.joined, "{what}: unread and mention counts");
    assert_eq!(a.levels, b.levels, "{what}: notification levels");
}

pub async fn export_import_round_trip(b: Backend) {
    let s = &*b.store;
    // Users: accounts with profiles and avatars (one image shared), a guest, a bot.
    let alice = account(s, "Alice").await;
    let bob = account(s, "bob").await;
    let carol = account(s, "carol").await;
    let png = vec![0x89, b'P', b'N', b'G', 0, 1, 2, 255];
    s.set_avatar(
        &alice.id,
        Some(("hash-a".into(), "image/png".into(), png.clone())),
    )
    .await
    .unwrap();
    s.set_avatar(&carol.id, Some(("hash-a".into(), "image/png".into(), png)))
        .await
        .unwrap();
    s.set_avatar(
        &bob.id,
        Some(("hash-b".into(), "image/webp".into(), vec![7; 300])),
    )
    .await
    .unwrap();
    s.update_profile(
        &alice.id,
        ProfilePatch {
            display_name: Some(Some("Alice Ä.".into())),
            bio: Some("bio\nwith lines".into()),
            status_text: Some("busy".into()),
        },
    )
    .await
    .unwrap();
    s.set_last_seen(&bob.id, 5_555).await.unwrap();
    let visitor = guest(s, "Visitor", 0).await;
    s.create_session("visitor-token", &visitor.id, 0, i64::MAX / 2)
        .await
        .unwrap();
    let bot = s
        .create_account(new_user("robot", UserKind::Bot))
        .await
        .unwrap();

    // Rooms: default, private with every option, a DM, one without owner.
    let mut g = new_room("General", RoomKind::Public);
    g.is_default = true;
    g.guests_allowed = true;
    g.created_by = Some(alice.id.clone());
    let general = s.create_room(g, Some(&alice.id)).await.unwrap();
    let mut p = new_room("Hideout", RoomKind::Private);
    p.topic = "secret things".into();
    p.password_hash = Some("room-hash".into());
    p.starts_at = Some(10);
    p.ends_at = Some(99_999);
    p.member_limit = Some(10);
    p.created_by = Some(bob.id.clone());
    let hideout = s.create_room(p, Some(&bob.id)).await.unwrap();
    let key = dm_key(&[&alice, &bob]);
    let dm = s
        .create_dm(new_dm(&alice.id), &key, &[alice.id.clone(), bob.id.clone()])
        .await
        .unwrap();
    s.create_room(new_room("Quiet", RoomKind::Public), None)
        .await
        .unwrap();
    for (u, role) in [
        (&bob, Role::Moderator),
        (&carol, Role::Member),
        (&visitor, Role::Member),
        (&bot, Role::Member),
    ] {
        s.add_member(&general.id, &u.id, role, 3).await.unwrap();
    }
    s.add_member(&hideout.id, &alice.id, Role::Admin, 4)
        .await
        .unwrap();
    s.set_notification_level(&general.id, &bob.id, "all")
        .await
        .unwrap();
    s.set_notification_level(&dm.id, &alice.id, "none")
        .await
        .unwrap();

    // Messages with everything.
    let mut nm = new_msg(&general.id, &alice.id, "hello @bob");
    nm.mentions = vec![bob.id.clone()];
    nm.client_id = Some("c1".into());
    let g1 = created(s.insert_message(nm).await.unwrap());
    let file = s
        .create_attachment(upload(&bob.id, 20, "sha-file", Some("sha-thumb")))
        .await
        .unwrap();
    let file2 = s
        .create_attachment(upload(&bob.id, 21, "sha-file2", None))
        .await
        .unwrap();
    let mut nm = new_msg(&general.id, &bob.id, "files for you");
    nm.reply_to = Some(g1.id.clone());
    nm.attachment_ids = vec![file2.id.clone(), file.id.clone()];
    let g2 = created(s.insert_message(nm).await.unwrap());
    let mut nm = new_msg(&general.id, &carol.id, "in the thread @alice");
    nm.thread_root = Some(g1.id.clone());
    nm.mentions = vec![alice.id.clone()];
    let t1 = created(s.insert_message(nm).await.unwrap());
    let mut nm = new_msg(&general.id, &bob.id, "me too");
    nm.thread_root = Some(g1.id.clone());
    created(s.insert_message(nm).await.unwrap());
    let g3 = post(s, &general.id, &alice.id, "to be edited").await;
    s.edit_message(
        &g3.id,
        "edited @carol",
        "<p>edited</p>",
        std::slice::from_ref(&carol.id),
        77,
    )
    .await
    .unwrap();
    let g4 = post(s, &general.id, &visitor.id, "to be deleted").await;
    react(s, &g4.id, &alice.id, "👎", true, 5).await.unwrap();
    s.delete_message(&g4.id).await.unwrap();
    for (u, e, t) in [
        (&bob, "👍", 10),
        (&carol, "🎉", 11),
        (&visitor, "👍", 12),
        (&alice, "🎉", 13),
        (&bot, "❤️", 14),
    ] {
        react(s, &g1.id, &u.id, e, true, t).await.unwrap();
    }
    react(s, &t1.id, &alice.id, "❤️", true, 15).await.unwrap();
    s.set_pinned(&g2.id, true).await.unwrap().unwrap();
    s.mark_read(&general.id, &carol.id, 2).await.unwrap();
    let mut nm = new_msg(&dm.id, &alice.id, "psst @bob");
    nm.mentions = vec![bob.id.clone()];
    created(s.insert_message(nm).await.unwrap());
    let dm_file = s
        .create_attachment(upload(&bob.id, 30, "sha-dm", Some("sha-dm-thumb")))
        .await
        .unwrap();
    let mut nm = new_msg(&dm.id, &bob.id, "");
    nm.attachment_ids = vec![dm_file.id.clone()];
    created(s.insert_message(nm).await.unwrap());
    post(s, &hideout.id, &bob.id, "secret").await;

    let dump = export(s).await;
    assert_eq!(dump.users.len(), 5);
    assert_eq!(dump.rooms.len(), 4);
    assert!(
        dump.users.iter().any(|u| u.password_hash.is_some()),
        "with password hashes"
    );
    assert!(dump.messages.iter().any(|m| m.reactions.len() == 3));
    assert!(dump.messages.iter().any(|m| m.attachments.len() == 2));
    assert!(dump.joined.iter().any(|(_, j)| j.iter().any(|x| x.2 > 0)));

    // Into an empty database of the same kind, and of the other kind when there is one.
    let other = match b.kind {
        Kind::Sqlite => Kind::Postgres,
        Kind::Postgres => Kind::Sqlite,
    };
    let mut targets = vec![Fresh::open(b.kind).await.expect("same kind")];
    targets.extend(Fresh::open(other).await);
    for target in targets {
        let what = format!("{:?} -> {:?}", b.kind, target.kind);
        let t = &*target.store;
        import(t, &dump).await;
        let back = export(t).await;
        assert_dumps_equal(&dump, &back, &what);

        // The imported database works on from where the export stopped.
        assert_eq!(t.user_by_name("alice").await.unwrap().id, alice.id);
        assert_err!(t.user_by_name("visitor").await, StoreError::NotFound);
        guest(t, "visitor", 1).await;
        assert_eq!(
            t.dm_by_key(&key).await.unwrap().map(|r| r.id),
            Some(dm.id.clone())
        );
        assert_err!(
            t.create_dm(new_dm(&bob.id), &key, &[alice.id.clone(), bob.id.clone()])
                .await,
            StoreError::Conflict(_)
        );
        let gr = t.room(&general.id).await.unwrap();
        let next = post(t, &general.id, &carol.id, "after the move").await;
        assert_eq!(
            (next.seq, next.pos),
            (gr.last_seq + 1, gr.last_pos + 1),
            "{what}"
        );
        let g1t = react(t, &g1.id, &carol.id, "🚀", true, 1_000_000)
            .await
            .unwrap();
        assert_eq!(
            g1t.reactions.last().map(|r| r.emoji.as_str()),
            Some("🚀"),
            "{what}: new reactions come after the imported ones"
        );
        let found = hits(t, &alice.id, &["edited"], None, None).await;
        assert_eq!(
            ids(&found.iter().map(|h| h.message.clone()).collect::<Vec<_>>()),
            vec![g3.id.clone()]
        );
        assert!(t.blob_in_use("sha-dm-thumb").await.unwrap(), "{what}");
        assert_eq!(
            t.attachments(std::slice::from_ref(&file.id)).await.unwrap(),
            s.attachments(std::slice::from_ref(&file.id)).await.unwrap()
        );
        assert_eq!(t.pins(&general.id).await.unwrap().len(), 1);
        assert_eq!(
            t.thread(&g1.id, None, 10).await.unwrap().messages.len(),
            2,
            "{what}"
        );
        target.close().await;
    }
}
