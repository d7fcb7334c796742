//! The behaviour every `Store` backend must show. Each case starts on an empty
//! database and sees the store only as `Arc<dyn Store>`.

use std::collections::HashSet;
use std::sync::Arc;

use hubbub::store::*;

use crate::backend::Backend;

pub use crate::rich::*;

// --- helpers ---

pub(crate) fn uid() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn new_user(name: &str, kind: UserKind) -> NewUser {
    NewUser {
        id: uid(),
        kind,
        username: name.to_string(),
        display_name: None,
        password_hash: (kind == UserKind::User).then(|| format!("hash-of-{name}")),
        created_at: 1_000,
    }
}

pub(crate) async fn account(s: &dyn Store, name: &str) -> UserRecord {
    s.create_account(new_user(name, UserKind::User))
        .await
        .expect("create_account")
}

pub(crate) async fn guest(s: &dyn Store, name: &str, now: i64) -> UserRecord {
    s.create_guest(new_user(name, UserKind::Guest), now)
        .await
        .expect("create_guest")
}

pub(crate) fn new_room(name: &str, kind: RoomKind) -> NewRoom {
    NewRoom {
        id: uid(),
        name: name.to_string(),
        topic: String::new(),
        kind,
        password_hash: None,
        guests_allowed: false,
        starts_at: None,
        ends_at: None,
        member_limit: None,
        created_by: None,
        created_at: 2_000,
        is_default: false,
    }
}

pub(crate) async fn room(s: &dyn Store, name: &str, owner: Option<&str>) -> RoomRecord {
    let mut r = new_room(name, RoomKind::Public);
    r.created_by = owner.map(str::to_string);
    s.create_room(r, owner).await.expect("create_room")
}

pub(crate) fn new_msg(room_id: &str, author_id: &str, body: &str) -> NewMessage {
    NewMessage {
        id: uid(),
        room_id: room_id.to_string(),
        author_id: author_id.to_string(),
        body: body.to_string(),
        html: format!("<p>{body}</p>"),
        created_at: 3_000,
        reply_to: None,
        thread_root: None,
        client_id: None,
        mentions: Vec::new(),
        attachment_ids: Vec::new(),
    }
}

pub(crate) fn created(i: Inserted) -> MessageRecord {
    match i {
        Inserted::Created { message, .. } => message,
        Inserted::Existing(m) => panic!("expected a new message, got the existing {}", m.id),
    }
}

pub(crate) async fn post(
    s: &dyn Store,
    room_id: &str,
    author_id: &str,
    body: &str,
) -> MessageRecord {
    created(
        s.insert_message(new_msg(room_id, author_id, body))
            .await
            .expect("insert_message"),
    )
}

pub(crate) fn seqs(ms: &[MessageRecord]) -> Vec<i64> {
    ms.iter().map(|m| m.seq).collect()
}

pub(crate) fn ids(ms: &[MessageRecord]) -> Vec<String> {
    ms.iter().map(|m| m.id.clone()).collect()
}

/// Opens connections on both nodes ahead of a race, so that the racing calls start
/// together instead of being staggered by connection set-up.
pub(crate) async fn warm_up(b: &Backend) {
    let pings: Vec<_> = (0..16)
        .map(|i| {
            let node = b.node(i);
            tokio::spawn(async move { node.ping().await })
        })
        .collect();
    for p in pings {
        p.await.unwrap().expect("ping");
    }
}

// --- the store itself ---

pub async fn ping_and_reopen(b: Backend) {
    let s = &*b.store;
    s.ping().await.expect("ping");
    let alice = account(s, "alice").await;
    let r = room(s, "kept", Some(&alice.id)).await;
    let m = post(s, &r.id, &alice.id, "still here").await;
    // A restarted node: migrations run again as a no-op, the data is there.
    let again = b.reopen().await;
    again.ping().await.expect("ping after reopen");
    assert_eq!(again.user(&alice.id).await.unwrap(), alice);
    assert_eq!(again.message(&m.id).await.unwrap(), m);
    assert_eq!(again.room(&r.id).await.unwrap().last_seq, 1);
    again.close().await;
}

// --- accounts and guests ---

pub async fn first_account_is_admin(b: Backend) {
    let s = &*b.store;
    // Guests and bots are not accounts: they neither take nor get the admin seat.
    let g = guest(s, "visitor", 0).await;
    assert!(!g.is_admin);
    let bot = s
        .create_account(new_user("robot", UserKind::Bot))
        .await
        .unwrap();
    assert!(!bot.is_admin);
    let alice = account(s, "alice").await;
    assert!(alice.is_admin, "the first account is admin");
    let bob = account(s, "bob").await;
    assert!(!bob.is_admin, "only the first account is admin");

    assert_eq!(alice.kind, UserKind::User);
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.password_hash.as_deref(), Some("hash-of-alice"));
    assert_eq!(alice.created_at, 1_000);
    assert_eq!((alice.bio.as_str(), alice.status_text.as_str()), ("", ""));
    assert_eq!(
        (alice.avatar_hash.as_ref(), alice.last_seen_at),
        (None, None)
    );
    assert_eq!(s.user(&alice.id).await.unwrap(), alice);
    assert_eq!(s.user(&bob.id).await.unwrap(), bob);
    assert_eq!(s.user(&g.id).await.unwrap().kind, UserKind::Guest);
    assert_eq!(s.user(&bot.id).await.unwrap().kind, UserKind::Bot);
    assert_err!(s.user("no-such-user").await, StoreError::NotFound);
}

pub async fn concurrent_first_accounts_make_one_admin(b: Backend) {
    warm_up(&b).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (s, barrier) = (b.node(i), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                s.create_account(new_user(&format!("founder{i}"), UserKind::User))
                    .await
            })
        })
        .collect();
    let mut users = Vec::new();
    for t in tasks {
        users.push(t.await.unwrap().expect("create_account"));
    }
    assert_eq!(
        users.iter().filter(|u| u.is_admin).count(),
        1,
        "exactly one first admin"
    );
    let mut stored = 0;
    for u in &users {
        stored += usize::from(b.store.user(&u.id).await.unwrap().is_admin);
    }
    assert_eq!(stored, 1);
}

pub async fn names_are_unique_case_insensitively(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "Alice").await;
    assert_eq!(alice.username, "Alice", "the name keeps its case");
    assert_err!(
        s.create_account(new_user("ALICE", UserKind::User)).await,
        StoreError::Conflict(_)
    );
    assert_err!(
        s.create_account(new_user("alice", UserKind::Bot)).await,
        StoreError::Conflict(_)
    );
    // An account's name is never reclaimed by a guest, sessions or not.
    assert_err!(
        s.create_guest(new_user("aLiCe", UserKind::Guest), 10).await,
        StoreError::Conflict(_)
    );
    for n in ["alice", "ALICE", "Alice"] {
        assert_eq!(s.user_by_name(n).await.unwrap().id, alice.id);
    }
    assert_err!(s.user_by_name("alicia").await, StoreError::NotFound);

    let g = guest(s, "Wanda", 10).await;
    s.create_session("wanda-token", &g.id, 10, 1_000_000)
        .await
        .unwrap();
    assert_err!(
        s.create_account(new_user("wanda", UserKind::User)).await,
        StoreError::Conflict(_)
    );
    assert_err!(
        s.create_guest(new_user("WANDA", UserKind::Guest), 20).await,
        StoreError::Conflict(_)
    );
    // Duplicate ids are conflicts too.
    let mut dup = new_user("someone", UserKind::User);
    dup.id = alice.id.clone();
    assert_err!(s.create_account(dup).await, StoreError::Conflict(_));
}

pub async fn guest_name_freed_when_sessions_expire(b: Backend) {
    let s = &*b.store;
    let g1 = guest(s, "Wanderer", 1_000).await;
    s.create_session("t1", &g1.id, 1_000, 2_000).await.unwrap();
    assert_err!(
        s.create_guest(new_user("wanderer", UserKind::Guest), 1_500)
            .await,
        StoreError::Conflict(_)
    );
    assert_eq!(s.user_by_name("wanderer").await.unwrap().id, g1.id);
    // At `expires_at` the session is no longer valid: the name is free.
    let g2 = guest(s, "WANDERER", 2_000).await;
    assert_eq!(s.user_by_name("wanderer").await.unwrap().id, g2.id);
    assert_eq!(
        s.user(&g1.id).await.unwrap().username,
        "Wanderer",
        "the old guest stays"
    );
    assert!(
        s.search_users("wanderer", 10)
            .await
            .unwrap()
            .iter()
            .all(|u| u.id != g1.id)
    );

    // A touched session keeps the name; a deleted one frees it.
    let g3 = guest(s, "Roamer", 1_000).await;
    s.create_session("t3", &g3.id, 1_000, 2_000).await.unwrap();
    s.touch_session("t3", 1_900, 5_000).await.unwrap();
    assert_err!(
        s.create_guest(new_user("roamer", UserKind::Guest), 3_000)
            .await,
        StoreError::Conflict(_)
    );
    s.delete_session("t3").await.unwrap();
    let g4 = guest(s, "roamer", 3_000).await;
    assert_eq!(s.user_by_name("ROAMER").await.unwrap().id, g4.id);
    // A guest with several sessions holds the name while any of them is valid.
    s.create_session("t4a", &g4.id, 3_000, 4_000).await.unwrap();
    s.create_session("t4b", &g4.id, 3_000, 9_000).await.unwrap();
    assert_err!(
        s.create_guest(new_user("roamer", UserKind::Guest), 5_000)
            .await,
        StoreError::Conflict(_)
    );
    guest(s, "roamer", 9_000).await;
}

pub async fn guest_name_freed_by_release(b: Backend) {
    let s = &*b.store;
    let g = guest(s, "Drifter", 0).await;
    s.create_session("tok", &g.id, 0, i64::MAX / 2)
        .await
        .unwrap();
    assert_err!(
        s.create_guest(new_user("drifter", UserKind::Guest), 10)
            .await,
        StoreError::Conflict(_)
    );
    s.release_guest_name(&g.id).await.unwrap();
    assert_err!(s.user_by_name("drifter").await, StoreError::NotFound);
    let g2 = guest(s, "drifter", 10).await;
    assert_eq!(s.user_by_name("Drifter").await.unwrap().id, g2.id);
    // Releasing an account's name does nothing.
    let acc = account(s, "settler").await;
    s.release_guest_name(&acc.id).await.unwrap();
    assert_eq!(s.user_by_name("settler").await.unwrap().id, acc.id);
    assert_err!(
        s.create_guest(new_user("settler", UserKind::Guest), 10)
            .await,
        StoreError::Conflict(_)
    );
    s.release_guest_name("no-such-user").await.unwrap();
    // A released name is free for an account as well.
    s.release_guest_name(&g2.id).await.unwrap();
    account(s, "DRIFTER").await;
}

pub async fn sessions_expire_touch_and_delete(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    s.create_session("tok", &alice.id, 100, 200).await.unwrap();
    let sess = s.session("tok", 150).await.unwrap();
    assert_eq!(sess.user, alice);
    assert_eq!((sess.last_used_at, sess.expires_at), (100, 200));
    assert_err!(s.session("tok", 200).await, StoreError::NotFound);
    assert_err!(s.session("tok", 500).await, StoreError::NotFound);
    assert_err!(s.session("other", 150).await, StoreError::NotFound);
    assert_err!(
        s.create_session("tok", &alice.id, 100, 200).await,
        StoreError::Conflict(_)
    );

    s.touch_session("tok", 180, 400).await.unwrap();
    let sess = s.session("tok", 300).await.unwrap();
    assert_eq!((sess.last_used_at, sess.expires_at), (180, 400));
    // The session carries the user's current profile.
    s.set_admin(&alice.id, false).await.unwrap();
    assert!(!s.session("tok", 300).await.unwrap().user.is_admin);

    s.delete_session("tok").await.unwrap();
    assert_err!(s.session("tok", 300).await, StoreError::NotFound);
    s.delete_session("tok").await.unwrap();
    s.touch_session("tok", 1, 2).await.unwrap();
    assert_err!(s.session("tok", 1).await, StoreError::NotFound);
}

pub async fn profile_patch_password_admin_last_seen(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let u = s
        .update_profile(
            &alice.id,
            ProfilePatch {
                display_name: Some(Some("Alice A.".into())),
                bio: Some("hello".into()),
                status_text: Some("busy".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(u.display_name.as_deref(), Some("Alice A."));
    assert_eq!((u.bio.as_str(), u.status_text.as_str()), ("hello", "busy"));
    assert_eq!(s.user(&alice.id).await.unwrap(), u);
    // An empty patch changes nothing.
    assert_eq!(
        s.update_profile(&alice.id, ProfilePatch::default())
            .await
            .unwrap(),
        u
    );
    // Some(None) clears the display name; fields left out stay.
    let u = s
        .update_profile(
            &alice.id,
            ProfilePatch {
                display_name: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.display_name, None);
    assert_eq!((u.bio.as_str(), u.status_text.as_str()), ("hello", "busy"));
    let u = s
        .update_profile(
            &alice.id,
            ProfilePatch {
                status_text: Some(String::new()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((u.bio.as_str(), u.status_text.as_str()), ("hello", ""));
    assert_err!(
        s.update_profile("nobody", ProfilePatch::default()).await,
        StoreError::NotFound
    );

    s.set_password(&alice.id, "new-hash").await.unwrap();
    assert_eq!(
        s.user(&alice.id).await.unwrap().password_hash.as_deref(),
        Some("new-hash")
    );
    assert_err!(s.set_password("nobody", "x").await, StoreError::NotFound);

    let bob = account(s, "bob").await;
    assert!(!bob.is_admin);
    s.set_admin(&bob.id, true).await.unwrap();
    assert!(s.user(&bob.id).await.unwrap().is_admin);
    s.set_admin(&bob.id, false).await.unwrap();
    assert!(!s.user(&bob.id).await.unwrap().is_admin);
    assert_err!(s.set_admin("nobody", true).await, StoreError::NotFound);

    s.set_last_seen(&bob.id, 123_456).await.unwrap();
    assert_eq!(s.user(&bob.id).await.unwrap().last_seen_at, Some(123_456));
    s.set_last_seen("nobody", 1).await.unwrap();
}

pub async fn search_users_matches_and_escapes(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let alicia = account(s, "Alicia").await;
    let bob = account(s, "bob").await;
    s.update_profile(
        &bob.id,
        ProfilePatch {
            display_name: Some(Some("ALIbaba".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let under = account(s, "under_score").await;
    account(s, "underXscore").await;
    let gone = guest(s, "alina", 0).await;
    s.release_guest_name(&gone.id).await.unwrap();

    let names = |us: Vec<UserRecord>| us.into_iter().map(|u| u.id).collect::<Vec<_>>();
    // By name or display name, case-insensitively, ordered by name; released guests
    // are not found.
    let want = vec![alice.id.clone(), alicia.id.clone(), bob.id.clone()];
    assert_eq!(names(s.search_users("ali", 10).await.unwrap()), want);
    assert_eq!(names(s.search_users("ALI", 10).await.unwrap()), want);
    assert_eq!(
        names(s.search_users("ali", 2).await.unwrap()),
        want[..2].to_vec()
    );
    assert_eq!(
        names(s.search_users("baba", 10).await.unwrap()),
        vec![bob.id.clone()]
    );
    // LIKE wildcards in the query are literal.
    assert_eq!(
        names(s.search_users("_", 10).await.unwrap()),
        vec![under.id.clone()]
    );
    assert!(s.search_users("%", 10).await.unwrap().is_empty());
    assert!(s.search_users("a\\", 10).await.unwrap().is_empty());
    assert!(s.search_users("zzz", 10).await.unwrap().is_empty());
}

pub async fn avatars_set_share_and_clear(b: Backend) {
    let s = &*b.store;
    let a = account(s, "a").await;
    let bb = account(s, "b").await;
    let png = |bytes: &[u8]| Some(("image/png".to_string(), bytes.to_vec()));
    let with = |h: &str, v: Option<(String, Vec<u8>)>| v.map(|(ct, d)| (h.to_string(), ct, d));

    let u = s
        .set_avatar(&a.id, with("h1", png(&[1, 2, 3])))
        .await
        .unwrap();
    assert_eq!(u.avatar_hash.as_deref(), Some("h1"));
    assert_eq!(
        s.user(&a.id).await.unwrap().avatar_hash.as_deref(),
        Some("h1")
    );
    assert_eq!(
        s.avatar("h1").await.unwrap(),
        ("image/png".to_string(), vec![1, 2, 3])
    );
    // The same image for a second user: one stored copy, shared.
    s.set_avatar(&bb.id, with("h1", png(&[1, 2, 3])))
        .await
        .unwrap();
    let u = s
        .set_avatar(&a.id, with("h2", png(&[0, 255, 7])))
        .await
        .unwrap();
    assert_eq!(u.avatar_hash.as_deref(), Some("h2"));
    assert_eq!(
        s.avatar("h1").await.unwrap().1,
        vec![1, 2, 3],
        "still used by b"
    );
    assert_eq!(s.avatar("h2").await.unwrap().1, vec![0, 255, 7]);
    // Clearing drops images nobody uses any more.
    let u = s.set_avatar(&bb.id, None).await.unwrap();
    assert_eq!(u.avatar_hash, None);
    assert_err!(s.avatar("h1").await, StoreError::NotFound);
    s.set_avatar(&a.id, None).await.unwrap();
    assert_err!(s.avatar("h2").await, StoreError::NotFound);
    // Unknown user: nothing stored.
    assert_err!(
        s.set_avatar("nobody", with("h3", png(&[9]))).await,
        StoreError::NotFound
    );
    assert_err!(s.avatar("h3").await, StoreError::NotFound);
    // Re-setting the same image keeps it.
    s.set_avatar(&a.id, with("h4", png(&[4]))).await.unwrap();
    s.set_avatar(&a.id, with("h4", png(&[4]))).await.unwrap();
    assert_eq!(s.avatar("h4").await.unwrap().1, vec![4]);
}

// --- rooms ---

pub async fn rooms_create_and_default(b: Backend) {
    let s = &*b.store;
    assert!(s.default_room().await.unwrap().is_none());
    let owner = account(s, "owner").await;
    let mut nr = new_room("Workshop", RoomKind::Private);
    nr.topic = "Rust".into();
    nr.password_hash = Some("ph".into());
    nr.guests_allowed = true;
    nr.starts_at = Some(10);
    nr.ends_at = Some(20);
    nr.member_limit = Some(30);
    nr.created_by = Some(owner.id.clone());
    let r = s.create_room(nr.clone(), Some(&owner.id)).await.unwrap();
    let want = RoomRecord {
        id: nr.id.clone(),
        name: "Workshop".into(),
        topic: "Rust".into(),
        kind: RoomKind::Private,
        password_hash: Some("ph".into()),
        guests_allowed: true,
        starts_at: Some(10),
        ends_at: Some(20),
        member_limit: Some(30),
        created_by: Some(owner.id.clone()),
        created_at: 2_000,
        last_seq: 0,
        last_pos: 0,
        member_count: 1,
        is_default: false,
        dm_key: None,
    };
    assert_eq!(r, want);
    assert_eq!(s.room(&r.id).await.unwrap(), want);
    let m = s.membership(&r.id, &owner.id).await.unwrap();
    assert_eq!(
        m,
        MemberRecord {
            room_id: r.id.clone(),
            user_id: owner.id.clone(),
            role: Role::Owner,
            joined_at: 2_000,
            last_read_seq: 0,
            notification_level: None,
            muted_until: None,
        }
    );
    // Without an owner: no members.
    let lobby = s
        .create_room(new_room("Lobby", RoomKind::Public), None)
        .await
        .unwrap();
    assert_eq!(lobby.member_count, 0);
    assert_eq!(lobby.created_by, None);
    assert_err!(
        s.membership(&lobby.id, &owner.id).await,
        StoreError::NotFound
    );
    assert!(s.default_room().await.unwrap().is_none());

    let mut g = new_room("General", RoomKind::Public);
    g.is_default = true;
    let general = s.create_room(g, None).await.unwrap();
    assert!(general.is_default);
    assert_eq!(s.default_room().await.unwrap(), Some(general));
    assert_err!(s.room("no-such-room").await, StoreError::NotFound);
    assert_err!(s.create_room(nr, None).await, StoreError::Conflict(_));
}

pub async fn update_room_patch_semantics(b: Backend) {
    let s = &*b.store;
    let owner = account(s, "owner").await;
    let mut nr = new_room("Before", RoomKind::Public);
    nr.password_hash = Some("ph".into());
    nr.starts_at = Some(10);
    nr.ends_at = Some(20);
    nr.member_limit = Some(5);
    let r = s.create_room(nr, Some(&owner.id)).await.unwrap();
    post(s, &r.id, &owner.id, "hi").await;
    let r = s.room(&r.id).await.unwrap();

    assert_eq!(
        s.update_room(&r.id, RoomPatch::default()).await.unwrap(),
        r,
        "empty patch"
    );
    let u = s
        .update_room(
            &r.id,
            RoomPatch {
                name: Some("After".into()),
                topic: Some("new topic".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((u.name.as_str(), u.topic.as_str()), ("After", "new topic"));
    assert_eq!(u.password_hash.as_deref(), Some("ph"));
    assert_eq!(
        (u.starts_at, u.ends_at, u.member_limit),
        (Some(10), Some(20), Some(5))
    );
    assert_eq!(
        (u.last_seq, u.last_pos, u.member_count),
        (1, 1, 1),
        "counters untouched"
    );

    let u = s
        .update_room(
            &r.id,
            RoomPatch {
                password_hash: Some(Some("ph2".into())),
                guests_allowed: Some(true),
                starts_at: Some(Some(11)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.password_hash.as_deref(), Some("ph2"));
    assert!(u.guests_allowed);
    assert_eq!((u.starts_at, u.ends_at), (Some(11), Some(20)));

    // Some(None) clears.
    let u = s
        .update_room(
            &r.id,
            RoomPatch {
                password_hash: Some(None),
                starts_at: Some(None),
                ends_at: Some(None),
                member_limit: Some(None),
                guests_allowed: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(u.password_hash, None);
    assert_eq!((u.starts_at, u.ends_at, u.member_limit), (None, None, None));
    assert!(!u.guests_allowed);
    assert_eq!(u.name, "After");
    assert_eq!(s.room(&r.id).await.unwrap(), u);
    assert_err!(
        s.update_room("no-such-room", RoomPatch::default()).await,
        StoreError::NotFound
    );
}

pub async fn delete_room_cascades(b: Backend) {
    let s = &*b.store;
    let owner = account(s, "owner").await;
    let member = account(s, "member").await;
    let r = room(s, "doomed", Some(&owner.id)).await;
    let keep = room(s, "kept", Some(&owner.id)).await;
    s.add_member(&r.id, &member.id, Role::Member, 5)
        .await
        .unwrap();
    let m1 = post(s, &r.id, &owner.id, "one").await;
    let m2 = post(s, &r.id, &member.id, "two").await;
    let kept_msg = post(s, &keep.id, &owner.id, "stays").await;

    s.delete_room(&r.id).await.unwrap();
    assert_err!(s.room(&r.id).await, StoreError::NotFound);
    assert_err!(s.membership(&r.id, &owner.id).await, StoreError::NotFound);
    assert_err!(s.membership(&r.id, &member.id).await, StoreError::NotFound);
    assert_err!(s.message(&m1.id).await, StoreError::NotFound);
    assert_err!(s.message(&m2.id).await, StoreError::NotFound);
    assert!(s.joined_rooms(&member.id).await.unwrap().is_empty());
    let left: Vec<_> = s
        .joined_rooms(&owner.id)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.room.id)
        .collect();
    assert_eq!(left, vec![keep.id.clone()]);
    assert_eq!(s.message(&kept_msg.id).await.unwrap(), kept_msg);
    assert!(s.user(&member.id).await.is_ok(), "users stay");
    assert_err!(s.delete_room(&r.id).await, StoreError::NotFound);
}

pub async fn public_rooms_listing(b: Backend) {
    let s = &*b.store;
    let u1 = account(s, "u1").await;
    let u2 = account(s, "u2").await;
    let mut g = new_room("General", RoomKind::Public);
    g.is_default = true;
    let general = s.create_room(g, None).await.unwrap();
    let zeta = room(s, "Zeta", Some(&u1.id)).await;
    s.add_member(&zeta.id, &u2.id, Role::Member, 1)
        .await
        .unwrap();
    let alpha = room(s, "alpha", Some(&u1.id)).await;
    let beta_upper = room(s, "Beta", Some(&u2.id)).await;
    s.create_room(new_room("Secret", RoomKind::Private), Some(&u1.id))
        .await
        .unwrap();
    s.create_room(new_room("dm", RoomKind::Dm), Some(&u1.id))
        .await
        .unwrap();
    let listed: Vec<_> = s
        .public_rooms()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    // Default first, then by member count, then by name (byte order, as SQLite sorts).
    assert_eq!(listed, vec![general.id, zeta.id, beta_upper.id, alpha.id]);
}

// --- membership ---

pub async fn membership_add_remove_and_count(b: Backend) {
    let s = &*b.store;
    let owner = account(s, "owner").await;
    let u1 = account(s, "u1").await;
    let u2 = account(s, "u2").await;
    let r = room(s, "room", Some(&owner.id)).await;

    assert!(s.add_member(&r.id, &u1.id, Role::Member, 50).await.unwrap());
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 2);
    assert!(
        !s.add_member(&r.id, &u1.id, Role::Admin, 60).await.unwrap(),
        "already a member"
    );
    let m = s.membership(&r.id, &u1.id).await.unwrap();
    assert_eq!(
        (m.role, m.joined_at, m.last_read_seq),
        (Role::Member, 50, 0),
        "unchanged"
    );
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 2);
    assert!(
        s.add_member(&r.id, &u2.id, Role::Moderator, 70)
            .await
            .unwrap()
    );
    assert_eq!(
        s.membership(&r.id, &u2.id).await.unwrap().role,
        Role::Moderator
    );
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 3);

    assert!(s.remove_member(&r.id, &u1.id).await.unwrap());
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 2);
    assert_err!(s.membership(&r.id, &u1.id).await, StoreError::NotFound);
    assert!(
        !s.remove_member(&r.id, &u1.id).await.unwrap(),
        "not a member any more"
    );
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 2);
    assert!(
        s.add_member(&r.id, &u1.id, Role::Member, 80).await.unwrap(),
        "may come back"
    );
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 3);
    assert!(!s.remove_member("no-such-room", &u1.id).await.unwrap());
    assert_err!(
        s.add_member("no-such-room", &u1.id, Role::Member, 1).await,
        StoreError::NotFound
    );
    assert_eq!(s.members(&r.id, None, 100).await.unwrap().len(), 3);
}

pub async fn member_limit_is_enforced(b: Backend) {
    let s = &*b.store;
    let owner = account(s, "owner").await;
    let u1 = account(s, "u1").await;
    let u2 = account(s, "u2").await;
    let mut nr = new_room("small", RoomKind::Public);
    nr.member_limit = Some(2);
    let r = s.create_room(nr, Some(&owner.id)).await.unwrap();
    // The limit counts the owner.
    assert!(s.add_member(&r.id, &u1.id, Role::Member, 1).await.unwrap());
    assert_err!(
        s.add_member(&r.id, &u2.id, Role::Member, 1).await,
        StoreError::RoomFull
    );
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 2);
    assert_err!(s.membership(&r.id, &u2.id).await, StoreError::NotFound);
    // Joining again while full is still "already a member".
    assert!(!s.add_member(&r.id, &u1.id, Role::Member, 1).await.unwrap());
    assert!(s.remove_member(&r.id, &u1.id).await.unwrap());
    assert!(s.add_member(&r.id, &u2.id, Role::Member, 1).await.unwrap());
    assert_err!(
        s.add_member(&r.id, &u1.id, Role::Member, 1).await,
        StoreError::RoomFull
    );
    s.update_room(
        &r.id,
        RoomPatch {
            member_limit: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(s.add_member(&r.id, &u1.id, Role::Member, 1).await.unwrap());
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 3);
}

pub async fn member_limit_holds_under_concurrency(b: Backend) {
    let s = b.store.clone();
    let mut nr = new_room("limited", RoomKind::Public);
    nr.member_limit = Some(4);
    let r = s.create_room(nr, None).await.unwrap();
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(account(&*s, &format!("joiner{i}")).await);
    }
    warm_up(&b).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(users.len()));
    let tasks: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let (node, barrier, room_id, user_id) =
                (b.node(i), barrier.clone(), r.id.clone(), u.id.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                node.add_member(&room_id, &user_id, Role::Member, 1).await
            })
        })
        .collect();
    let (mut joined, mut full) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(true) => joined += 1,
            Err(StoreError::RoomFull) => full += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((joined, full), (4, 6));
    assert_eq!(s.room(&r.id).await.unwrap().member_count, 4);
    assert_eq!(s.members(&r.id, None, 100).await.unwrap().len(), 4);
}

pub async fn members_paging(b: Backend) {
    let s = &*b.store;
    // Ids of mixed case: pages follow byte order, as in SQLite.
    let mut users = Vec::new();
    for (i, id) in ["m-A", "m-b", "m-C", "m-d", "m-E", "m-f"]
        .iter()
        .enumerate()
    {
        let mut nu = new_user(&format!("pager{i}"), UserKind::User);
        nu.id = id.to_string();
        users.push(s.create_account(nu).await.unwrap());
    }
    let r = room(s, "paged", Some("m-d")).await;
    for (i, u) in users.iter().enumerate() {
        if u.id != "m-d" {
            assert!(
                s.add_member(&r.id, &u.id, Role::Member, 10 + i as i64)
                    .await
                    .unwrap()
            );
        }
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.members(&r.id, after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        for e in &page {
            assert_eq!(e.user.id, e.member.user_id);
            assert_eq!(e.member.room_id, r.id);
            assert_eq!(
                e.user.password_hash, None,
                "members never carry password hashes"
            );
        }
        after = Some(page.last().unwrap().user.id.clone());
        seen.extend(page.into_iter().map(|e| (e.user.id, e.member.role)));
    }
    let order: Vec<_> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(order, ["m-A", "m-C", "m-E", "m-b", "m-d", "m-f"]);
    assert!(seen.contains(&("m-d".to_string(), Role::Owner)));
    let rest = s.members(&r.id, Some("m-C"), 100).await.unwrap();
    let rest: Vec<_> = rest.iter().map(|e| e.user.id.as_str()).collect();
    assert_eq!(rest, ["m-E", "m-b", "m-d", "m-f"]);
    assert!(
        s.members("no-such-room", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn neighbours_honour_size_and_dms(b: Backend) {
    let s = &*b.store;
    let mut u = std::collections::HashMap::new();
    for n in ["me", "small", "big1", "big2", "dm1", "dm2", "alone"] {
        u.insert(n, account(s, n).await.id);
    }
    let small = room(s, "small room", Some(&u["me"])).await;
    s.add_member(&small.id, &u["small"], Role::Member, 1)
        .await
        .unwrap();
    let big = room(s, "big room", Some(&u["me"])).await;
    s.add_member(&big.id, &u["big1"], Role::Member, 1)
        .await
        .unwrap();
    s.add_member(&big.id, &u["big2"], Role::Member, 1)
        .await
        .unwrap();
    let dm = s
        .create_room(new_room("dm", RoomKind::Dm), Some(&u["me"]))
        .await
        .unwrap();
    s.add_member(&dm.id, &u["dm1"], Role::Member, 1)
        .await
        .unwrap();
    s.add_member(&dm.id, &u["dm2"], Role::Member, 1)
        .await
        .unwrap();

    let set = |v: Vec<UserRecord>| {
        assert!(
            v.iter().all(|x| x.password_hash.is_none()),
            "no password hashes"
        );
        let n = v.len();
        let ids: HashSet<String> = v.into_iter().map(|x| x.id).collect();
        assert_eq!(ids.len(), n, "each neighbour once");
        ids
    };
    let want = |names: &[&str]| names.iter().map(|n| u[n].clone()).collect::<HashSet<_>>();
    // Rooms of at most 2 members, and DMs of any size.
    assert_eq!(
        set(s.neighbours(&u["me"], 2).await.unwrap()),
        want(&["me", "small", "dm1", "dm2"])
    );
    assert_eq!(
        set(s.neighbours(&u["me"], 3).await.unwrap()),
        want(&["me", "small", "big1", "big2", "dm1", "dm2"])
    );
    assert_eq!(
        set(s.neighbours(&u["big1"], 2).await.unwrap()),
        want(&["big1"])
    );
    assert_eq!(
        set(s.neighbours(&u["dm1"], 2).await.unwrap()),
        want(&["dm1", "me", "dm2"])
    );
    assert_eq!(
        set(s.neighbours(&u["alone"], 1000).await.unwrap()),
        want(&["alone"])
    );
}

// --- messages ---

pub async fn messages_seq_and_pos(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let r = room(s, "room", Some(&alice.id)).await;
    s.add_member(&r.id, &bob.id, Role::Member, 1).await.unwrap();

    let m1 = post(s, &r.id, &alice.id, "first").await;
    let mut nm = new_msg(&r.id, &bob.id, "second");
    nm.mentions = vec![alice.id.clone(), "someone-else".into()];
    nm.created_at = 4_000;
    let m2 = created(s.insert_message(nm).await.unwrap());
    let mut nm = new_msg(&r.id, &alice.id, "third");
    nm.reply_to = Some(m1.id.clone());
    let m3 = created(s.insert_message(nm).await.unwrap());
    assert_eq!(seqs(&[m1.clone(), m2.clone(), m3.clone()]), vec![1, 2, 3]);
    assert_eq!((m1.pos, m2.pos, m3.pos), (1, 2, 3));

    assert_eq!(m2.room_id, r.id);
    assert_eq!(m2.author.id, bob.id);
    assert_eq!(m2.author.username, "bob");
    assert_eq!(
        m2.author.password_hash, None,
        "messages never carry password hashes"
    );
    assert_eq!(
        (m2.body.as_str(), m2.html.as_str()),
        ("second", "<p>second</p>")
    );
    assert_eq!((m2.created_at, m2.edited_at), (4_000, None));
    assert_eq!(
        m2.mentions,
        vec![alice.id.clone(), "someone-else".to_string()]
    );
    assert!(!m2.deleted && !m2.pinned);
    assert_eq!(
        (
            m2.reply_to.as_ref(),
            m2.thread_root.as_ref(),
            m2.reply_count
        ),
        (None, None, 0)
    );
    assert_eq!(m2.client_id, None);
    assert_eq!(m3.reply_to.as_deref(), Some(m1.id.as_str()));
    for m in [&m1, &m2, &m3] {
        assert_eq!(&s.message(&m.id).await.unwrap(), m);
    }
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!((rr.last_seq, rr.last_pos), (3, 3));
    // Posting reads the room up to one's own message.
    assert_eq!(
        s.membership(&r.id, &alice.id).await.unwrap().last_read_seq,
        3
    );
    assert_eq!(s.membership(&r.id, &bob.id).await.unwrap().last_read_seq, 2);

    // An edit takes the next pos, keeps the seq.
    let e = s
        .edit_message(
            &m1.id,
            "first!",
            "<p>first!</p>",
            std::slice::from_ref(&bob.id),
            9_000,
        )
        .await
        .unwrap();
    assert_eq!((e.seq, e.pos), (1, 4));
    assert_eq!(
        (e.body.as_str(), e.html.as_str()),
        ("first!", "<p>first!</p>")
    );
    assert_eq!(e.mentions, vec![bob.id.clone()]);
    assert_eq!(e.edited_at, Some(9_000));
    assert_eq!(e.created_at, m1.created_at);
    assert_eq!(s.message(&m1.id).await.unwrap(), e);
    let e2 = s
        .edit_message(&m2.id, "2nd", "<p>2nd</p>", &[], 9_500)
        .await
        .unwrap();
    assert_eq!((e2.seq, e2.pos), (2, 5));
    assert!(e2.mentions.is_empty());
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!((rr.last_seq, rr.last_pos), (3, 5));
    let m4 = post(s, &r.id, &bob.id, "fourth").await;
    assert_eq!((m4.seq, m4.pos), (4, 6));

    assert_err!(
        s.edit_message("no-such-message", "x", "x", &[], 1).await,
        StoreError::NotFound
    );
    assert_err!(s.message("no-such-message").await, StoreError::NotFound);
    assert_err!(
        s.insert_message(new_msg("no-such-room", &alice.id, "x"))
            .await,
        StoreError::NotFound
    );
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!(
        (rr.last_seq, rr.last_pos),
        (4, 6),
        "failed writes take nothing"
    );
}

pub async fn thread_reply_bumps_root(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let root = post(s, &r.id, &alice.id, "root").await;
    post(s, &r.id, &alice.id, "other").await;

    let mut nm = new_msg(&r.id, &alice.id, "reply 1");
    nm.thread_root = Some(root.id.clone());
    let (reply, bumped) = match s.insert_message(nm).await.unwrap() {
        Inserted::Created {
            message,
            thread_root,
        } => (message, thread_root.expect("the root comes back")),
        Inserted::Existing(_) => panic!("expected a new message"),
    };
    assert_eq!((reply.seq, reply.pos), (3, 3));
    assert_eq!(reply.thread_root.as_deref(), Some(root.id.as_str()));
    assert_eq!(bumped.id, root.id);
    assert_eq!((bumped.seq, bumped.pos, bumped.reply_count), (1, 4, 1));
    assert_eq!(bumped.body, "root");
    assert_eq!(s.message(&root.id).await.unwrap(), bumped);

    let mut nm = new_msg(&r.id, &alice.id, "reply 2");
    nm.thread_root = Some(root.id.clone());
    let Inserted::Created {
        message: reply2,
        thread_root: Some(bumped2),
    } = s.insert_message(nm).await.unwrap()
    else {
        panic!("expected a new reply with its root")
    };
    assert_eq!((reply2.seq, reply2.pos), (4, 5));
    assert_eq!((bumped2.pos, bumped2.reply_count), (6, 2));
    // Without a thread root, none comes back.
    let Inserted::Created {
        thread_root: None, ..
    } = s
        .insert_message(new_msg(&r.id, &alice.id, "plain"))
        .await
        .unwrap()
    else {
        panic!("a plain message has no thread root")
    };
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!((rr.last_seq, rr.last_pos), (5, 7));

    // A reply to a root that does not exist stores nothing.
    let mut nm = new_msg(&r.id, &alice.id, "orphan");
    nm.thread_root = Some("no-such-message".into());
    let orphan_id = nm.id.clone();
    assert_err!(s.insert_message(nm).await, StoreError::NotFound);
    assert_err!(s.message(&orphan_id).await, StoreError::NotFound);
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!((rr.last_seq, rr.last_pos), (5, 7));
}

pub async fn delete_leaves_a_tombstone(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let mut nm = new_msg(&r.id, &alice.id, "secret @bob");
    nm.mentions = vec!["bob-id".into()];
    nm.client_id = Some("c-del".into());
    let m = created(s.insert_message(nm).await.unwrap());
    post(s, &r.id, &alice.id, "after").await;

    let d = s.delete_message(&m.id).await.unwrap();
    assert!(d.deleted);
    assert_eq!((d.body.as_str(), d.html.as_str()), ("", ""));
    assert!(d.mentions.is_empty());
    assert!(!d.pinned);
    assert_eq!((d.seq, d.pos), (1, 3));
    assert_eq!(d.author.id, alice.id);
    assert_eq!(s.message(&m.id).await.unwrap(), d);
    let page = s.history(&r.id, HistoryCursor::Latest, 10).await.unwrap();
    assert_eq!(
        seqs(&page.messages),
        vec![1, 2],
        "the tombstone stays in history"
    );
    assert!(page.messages[0].deleted);
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!((rr.last_seq, rr.last_pos), (2, 3));

    assert_err!(s.delete_message(&m.id).await, StoreError::NotFound);
    assert_err!(
        s.edit_message(&m.id, "back", "back", &[], 1).await,
        StoreError::NotFound
    );
    assert_err!(
        s.delete_message("no-such-message").await,
        StoreError::NotFound
    );
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!(
        (rr.last_seq, rr.last_pos),
        (2, 3),
        "refused changes take no pos"
    );
    // A retry of the deleted message's send still finds it (as a tombstone).
    let mut retry = new_msg(&r.id, &alice.id, "secret @bob");
    retry.client_id = Some("c-del".into());
    match s.insert_message(retry).await.unwrap() {
        Inserted::Existing(e) => assert_eq!(e, d),
        Inserted::Created { message, .. } => panic!("stored a duplicate {}", message.id),
    }
}

pub async fn client_id_is_idempotent(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let r = room(s, "room", Some(&alice.id)).await;

    let mut nm = new_msg(&r.id, &alice.id, "once");
    nm.client_id = Some("c-1".into());
    let original = created(s.insert_message(nm).await.unwrap());
    assert_eq!(original.client_id.as_deref(), Some("c-1"));

    let mut again = new_msg(&r.id, &alice.id, "once, retried");
    again.client_id = Some("c-1".into());
    let again_id = again.id.clone();
    match s.insert_message(again).await.unwrap() {
        Inserted::Existing(m) => assert_eq!(m, original),
        Inserted::Created { message, .. } => panic!("stored a duplicate {}", message.id),
    }
    assert_err!(s.message(&again_id).await, StoreError::NotFound);
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!(
        (rr.last_seq, rr.last_pos),
        (1, 1),
        "a retry takes no seq or pos"
    );

    // The pair is (author, client_id): another author may use the same client_id.
    let mut other = new_msg(&r.id, &bob.id, "bob's");
    other.client_id = Some("c-1".into());
    assert_eq!(created(s.insert_message(other).await.unwrap()).seq, 2);
    let mut next = new_msg(&r.id, &alice.id, "next");
    next.client_id = Some("c-2".into());
    assert_eq!(created(s.insert_message(next).await.unwrap()).seq, 3);
    // Messages without client_id are never deduplicated.
    assert_eq!(post(s, &r.id, &alice.id, "same").await.seq, 4);
    assert_eq!(post(s, &r.id, &alice.id, "same").await.seq, 5);

    // A retry returns the current state of the original (edited here).
    let edited = s
        .edit_message(&original.id, "edited", "<p>edited</p>", &[], 7)
        .await
        .unwrap();
    let mut retry = new_msg(&r.id, &alice.id, "once");
    retry.client_id = Some("c-1".into());
    match s.insert_message(retry).await.unwrap() {
        Inserted::Existing(m) => assert_eq!(m, edited),
        Inserted::Created { .. } => panic!("stored a duplicate"),
    }

    // A retried thread reply bumps its root once.
    let mut reply = new_msg(&r.id, &alice.id, "in thread");
    reply.thread_root = Some(original.id.clone());
    reply.client_id = Some("c-reply".into());
    created(s.insert_message(reply.clone()).await.unwrap());
    let pos_after = s.room(&r.id).await.unwrap().last_pos;
    reply.id = uid();
    assert!(matches!(
        s.insert_message(reply).await.unwrap(),
        Inserted::Existing(_)
    ));
    assert_eq!(s.message(&original.id).await.unwrap().reply_count, 1);
    assert_eq!(s.room(&r.id).await.unwrap().last_pos, pos_after);
    let page = s.history(&r.id, HistoryCursor::Latest, 100).await.unwrap();
    assert_eq!(seqs(&page.messages), vec![1, 2, 3, 4, 5, 6]);
}

pub async fn history_cursors(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let empty = s.history(&r.id, HistoryCursor::Latest, 5).await.unwrap();
    assert!(empty.messages.is_empty() && !empty.has_more);
    for i in 1..=10 {
        post(s, &r.id, &alice.id, &format!("m{i}")).await;
    }
    // Another room's messages never show up.
    let other = room(s, "other", Some(&alice.id)).await;
    post(s, &other.id, &alice.id, "elsewhere").await;

    let rid = r.id.as_str();
    let page = |c, l| async move { s.history(rid, c, l).await.unwrap() };
    let check = |p: HistoryPage, want: Vec<i64>, more: bool| {
        assert_eq!(seqs(&p.messages), want);
        assert_eq!(p.has_more, more, "has_more for {want:?}");
    };
    use HistoryCursor::*;
    check(page(Latest, 3).await, vec![8, 9, 10], true);
    check(page(Latest, 9).await, (2..=10).collect(), true);
    check(page(Latest, 10).await, (1..=10).collect(), false);
    check(page(Latest, 50).await, (1..=10).collect(), false);
    check(page(Before(8), 3).await, vec![5, 6, 7], true);
    check(page(Before(4), 3).await, vec![1, 2, 3], false);
    check(page(Before(3), 3).await, vec![1, 2], false);
    check(page(Before(1), 3).await, vec![], false);
    check(page(Before(100), 2).await, vec![9, 10], true);
    check(page(After(7), 3).await, vec![8, 9, 10], false);
    check(page(After(6), 3).await, vec![7, 8, 9], true);
    check(page(After(0), 3).await, vec![1, 2, 3], true);
    check(page(After(10), 3).await, vec![], false);
    let p = page(Latest, 10).await;
    assert!(p.messages.iter().all(|m| m.room_id == r.id));
    assert_eq!(p.messages[0].body, "m1");
}

pub async fn changes_since_snapshot(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let r = room(s, "room", Some(&alice.id)).await;
    let mut m = Vec::new();
    for i in 1..=5 {
        m.push(post(s, &r.id, &alice.id, &format!("m{i}")).await);
    }
    let c = s.changes_since(&r.id, 0, 100).await.unwrap();
    assert_eq!(ids(&c.messages), ids(&m));
    assert_eq!((c.truncated, c.pos), (false, 5));

    s.edit_message(&m[1].id, "m2 edited", "x", &[], 1)
        .await
        .unwrap(); // pos 6
    s.delete_message(&m[2].id).await.unwrap(); // pos 7
    let c = s.changes_since(&r.id, 0, 100).await.unwrap();
    // In pos order, each message once, in its current state.
    let want = vec![
        m[0].id.clone(),
        m[3].id.clone(),
        m[4].id.clone(),
        m[1].id.clone(),
        m[2].id.clone(),
    ];
    assert_eq!(ids(&c.messages), want);
    assert_eq!(
        c.messages.iter().map(|x| x.pos).collect::<Vec<_>>(),
        vec![1, 4, 5, 6, 7]
    );
    assert_eq!(c.messages[3].body, "m2 edited");
    assert!(c.messages[4].deleted);
    assert_eq!((c.truncated, c.pos), (false, 7));

    let c = s.changes_since(&r.id, 4, 100).await.unwrap();
    assert_eq!(ids(&c.messages), want[2..].to_vec());
    assert_eq!((c.truncated, c.pos), (false, 7));
    // The limit keeps the newest changes.
    let c = s.changes_since(&r.id, 0, 2).await.unwrap();
    assert_eq!(ids(&c.messages), want[3..].to_vec());
    assert_eq!((c.truncated, c.pos), (true, 7));
    let c = s.changes_since(&r.id, 0, 5).await.unwrap();
    assert_eq!(ids(&c.messages), want);
    assert!(!c.truncated, "exactly limit changes is not truncated");
    let c = s.changes_since(&r.id, 7, 100).await.unwrap();
    assert!(c.messages.is_empty());
    assert_eq!((c.truncated, c.pos), (false, 7));
    let fresh = room(s, "fresh", Some(&alice.id)).await;
    let c = s.changes_since(&fresh.id, 0, 100).await.unwrap();
    assert!(c.messages.is_empty());
    assert_eq!((c.truncated, c.pos), (false, 0));
    assert_err!(
        s.changes_since("no-such-room", 0, 10).await,
        StoreError::NotFound
    );
}

pub async fn changes_since_reads_one_snapshot(b: Backend) {
    let s = b.store.clone();
    let alice = account(&*s, "alice").await;
    let r = room(&*s, "racing", Some(&alice.id)).await;
    warm_up(&b).await;
    // A writer on the other node keeps committing while we read.
    let writer = {
        let (node, room_id, author) = (b.node2.clone(), r.id.clone(), alice.id.clone());
        tokio::spawn(async move {
            for i in 0..300 {
                post(&*node, &room_id, &author, &format!("m{i}")).await;
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads == 0 {
        let c = s.changes_since(&r.id, 0, 100_000).await.unwrap();
        // Only inserts here: in one snapshot the rows are exactly pos 1..=c.pos.
        let pos: Vec<i64> = c.messages.iter().map(|m| m.pos).collect();
        assert_eq!(
            pos,
            (1..=c.pos).collect::<Vec<_>>(),
            "rows and pos from different snapshots"
        );
        reads += 1;
    }
    writer.await.unwrap();
}

pub async fn mark_read_clamps_and_never_goes_back(b: Backend) {
    let s = &*b.store;
    let alice = account(s, "alice").await;
    let bob = account(s, "bob").await;
    let carol = account(s, "carol").await;
    let r = room(s, "room", Some(&alice.id)).await;
    s.add_member(&r.id, &bob.id, Role::Member, 1).await.unwrap();
    for i in 0..3 {
        post(s, &r.id, &alice.id, &format!("m{i}")).await;
    }
    assert_eq!(s.mark_read(&r.id, &bob.id, 2).await.unwrap(), 2);
    assert_eq!(
        s.mark_read(&r.id, &bob.id, 1).await.unwrap(),
        2,
        "never backwards"
    );
    assert_eq!(
        s.mark_read(&r.id, &bob.id, 99).await.unwrap(),
        3,
        "clamped to last_seq"
    );
    assert_eq!(s.membership(&r.id, &bob.id).await.unwrap().last_read_seq, 3);
    assert_eq!(s.mark_read(&r.id, &bob.id, 0).await.unwrap(), 3);
    post(s, &r.id, &alice.id, "m3").await;
    assert_eq!(s.mark_read(&r.id, &bob.id, 100).await.unwrap(), 4);
    assert_err!(s.mark_read(&r.id, &carol.id, 1).await, StoreError::NotFound);
    assert_err!(
        s.mark_read("no-such-room", &bob.id, 1).await,
        StoreError::NotFound
    );
}

pub async fn unread_counts(b: Backend) {
    let s = &*b.store;
    let a = account(s, "a").await;
    let bb = account(s, "b").await;
    let r = room(s, "room", Some(&a.id)).await;
    let unread = |user: String, room_id: String| async move {
        let joined = s.joined_rooms(&user).await.unwrap();
        joined
            .into_iter()
            .find(|j| j.room.id == room_id)
            .expect("joined")
            .unread_count
    };

    let m1 = post(s, &r.id, &a.id, "1").await;
    // b posts before joining: once a member, their own message does not count.
    post(s, &r.id, &bb.id, "2").await;
    s.add_member(&r.id, &bb.id, Role::Member, 1).await.unwrap();
    assert_eq!(unread(bb.id.clone(), r.id.clone()).await, 1);
    let m3 = post(s, &r.id, &a.id, "3").await;
    post(s, &r.id, &a.id, "4").await;
    assert_eq!(unread(bb.id.clone(), r.id.clone()).await, 3);
    assert_eq!(
        unread(a.id.clone(), r.id.clone()).await,
        0,
        "own messages are read"
    );
    // Deleted messages do not count.
    s.delete_message(&m3.id).await.unwrap();
    assert_eq!(unread(bb.id.clone(), r.id.clone()).await, 2);
    s.delete_message(&m1.id).await.unwrap();
    assert_eq!(unread(bb.id.clone(), r.id.clone()).await, 1);
    s.mark_read(&r.id, &bb.id, 2).await.unwrap();
    assert_eq!(unread(bb.id.clone(), r.id.clone()).await, 1);
    // Posting reads the room.
    post(s, &r.id, &bb.id, "5").await;
    assert_eq!(unread(bb.id.clone(), r.id.clone()).await, 0);
    assert_eq!(unread(a.id.clone(), r.id.clone()).await, 1);

    // The list: default room first, then by name; the caller's member row.
    let mut g = new_room("General", RoomKind::Public);
    g.is_default = true;
    let general = s.create_room(g, None).await.unwrap();
    s.add_member(&general.id, &bb.id, Role::Member, 9)
        .await
        .unwrap();
    let zed = room(s, "zed", Some(&bb.id)).await;
    let apple = room(s, "Apple", Some(&bb.id)).await;
    let joined = s.joined_rooms(&bb.id).await.unwrap();
    let order: Vec<_> = joined.iter().map(|j| j.room.id.clone()).collect();
    assert_eq!(
        order,
        vec![
            general.id.clone(),
            apple.id.clone(),
            r.id.clone(),
            zed.id.clone()
        ]
    );
    let j = &joined[0];
    assert_eq!(
        (j.member.user_id.as_str(), j.member.role, j.member.joined_at),
        (bb.id.as_str(), Role::Member, 9)
    );
    assert_eq!((j.unread_count, j.mention_count), (0, 0));
    assert_eq!(joined[1].member.role, Role::Owner);
    assert_eq!(joined[2].room.last_seq, 5);
    assert!(s.joined_rooms("nobody").await.unwrap().is_empty());
}

// --- concurrency (on PostgreSQL across two nodes) ---

pub async fn concurrent_inserts_get_dense_seqs(b: Backend) {
    const TASKS: usize = 8;
    const EACH: usize = 25;
    let s = b.store.clone();
    let owner = account(&*s, "owner").await;
    let r = room(&*s, "busy", Some(&owner.id)).await;
    let mut authors = Vec::new();
    for i in 0..TASKS {
        let a = account(&*s, &format!("writer{i}")).await;
        s.add_member(&r.id, &a.id, Role::Member, 1).await.unwrap();
        authors.push(a.id);
    }
    warm_up(&b).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (node, barrier, room_id, author) =
                (b.node(t), barrier.clone(), r.id.clone(), authors[t].clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut got = Vec::new();
                for i in 0..EACH {
                    let mut nm = new_msg(&room_id, &author, &format!("t{t} #{i}"));
                    // Half with client ids, half without: both paths.
                    nm.client_id = (i % 2 == 0).then(|| format!("t{t}-{i}"));
                    let m = created(node.insert_message(nm).await.expect("insert"));
                    got.push((m.seq, m.pos));
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "a writer's own messages in order"
        );
        all.extend(got);
    }
    let n = (TASKS * EACH) as i64;
    let mut seq: Vec<_> = all.iter().map(|x| x.0).collect();
    let mut pos: Vec<_> = all.iter().map(|x| x.1).collect();
    seq.sort_unstable();
    pos.sort_unstable();
    assert_eq!(seq, (1..=n).collect::<Vec<_>>(), "seqs exactly 1..={n}");
    assert_eq!(pos, (1..=n).collect::<Vec<_>>(), "pos exactly 1..={n}");
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!((rr.last_seq, rr.last_pos), (n, n));
    let page = s.history(&r.id, HistoryCursor::Latest, 1000).await.unwrap();
    assert_eq!(seqs(&page.messages), (1..=n).collect::<Vec<_>>());
    assert!(!page.has_more);
    let c = b.node2.changes_since(&r.id, 0, 1000).await.unwrap();
    assert_eq!(c.messages.len() as i64, n);
    assert_eq!(c.pos, n);
    // Every writer's read marker sits on one of its own messages.
    for a in &authors {
        let read = s.membership(&r.id, a).await.unwrap().last_read_seq;
        assert!(
            page.messages
                .iter()
                .any(|m| m.seq == read && &m.author.id == a)
        );
    }
}

pub async fn concurrent_same_client_id_stores_one(b: Backend) {
    const TASKS: usize = 8;
    const ROUNDS: usize = 10;
    let s = b.store.clone();
    let alice = account(&*s, "alice").await;
    let r = room(&*s, "retries", Some(&alice.id)).await;
    warm_up(&b).await;
    let mut expected_seq = 0;
    for round in 0..ROUNDS {
        let cid = format!("retry-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (node, barrier, room_id, author, cid) = (
                    b.node(t),
                    barrier.clone(),
                    r.id.clone(),
                    alice.id.clone(),
                    cid.clone(),
                );
                tokio::spawn(async move {
                    let mut nm = new_msg(&room_id, &author, &format!("attempt {t}"));
                    nm.client_id = Some(cid);
                    barrier.wait().await;
                    node.insert_message(nm).await.expect("insert")
                })
            })
            .collect();
        let mut created_ids = Vec::new();
        let mut returned = HashSet::new();
        for t in tasks {
            match t.await.unwrap() {
                Inserted::Created { message, .. } => {
                    returned.insert(message.id.clone());
                    created_ids.push(message);
                }
                Inserted::Existing(m) => {
                    returned.insert(m.id.clone());
                }
            }
        }
        assert_eq!(created_ids.len(), 1, "round {round}: exactly one stored");
        assert_eq!(
            returned.len(),
            1,
            "round {round}: everyone got the same message"
        );
        expected_seq += 1;
        assert_eq!(
            created_ids[0].seq, expected_seq,
            "round {round}: no seq burnt by the losers"
        );
        let rr = s.room(&r.id).await.unwrap();
        assert_eq!((rr.last_seq, rr.last_pos), (expected_seq, expected_seq));
    }
    let page = s.history(&r.id, HistoryCursor::Latest, 100).await.unwrap();
    assert_eq!(
        seqs(&page.messages),
        (1..=ROUNDS as i64).collect::<Vec<_>>()
    );
}

/// Many sends at once (SQLite writes them as one batch): one that cannot be stored
/// fails alone; the rest get dense numbers, their mentions and read markers.
pub async fn a_bad_send_fails_alone_among_concurrent_ones(b: Backend) {
    const N: usize = 24;
    const BAD: usize = 7;
    let s = b.store.clone();
    let alice = account(&*s, "alice").await;
    let bob = account(&*s, "bob").await;
    let r = room(&*s, "batch", Some(&alice.id)).await;
    s.add_member(&r.id, &bob.id, Role::Member, 1).await.unwrap();
    warm_up(&b).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (store, barrier) = (s.clone(), barrier.clone());
            let room_id = if i == BAD {
                "no-such-room".to_string()
            } else {
                r.id.clone()
            };
            let mut nm = new_msg(&room_id, &alice.id, &format!("m{i}"));
            nm.client_id = Some(format!("c{i}"));
            if i % 3 == 0 {
                nm.mentions = vec![bob.id.clone()];
            }
            tokio::spawn(async move {
                barrier.wait().await;
                store.insert_message(nm).await
            })
        })
        .collect();
    let mut seqs_got = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let res = t.await.unwrap();
        if i == BAD {
            assert_err!(res, StoreError::NotFound);
        } else {
            let m = created(res.expect("a good send is stored"));
            assert_eq!(m.body, format!("m{i}"));
            assert_eq!(m.seq, m.pos);
            seqs_got.push(m.seq);
        }
    }
    seqs_got.sort_unstable();
    let n = (N - 1) as i64;
    assert_eq!(seqs_got, (1..=n).collect::<Vec<_>>());
    let rr = s.room(&r.id).await.unwrap();
    assert_eq!((rr.last_seq, rr.last_pos), (n, n));
    assert_eq!(
        s.membership(&r.id, &alice.id).await.unwrap().last_read_seq,
        n
    );
    let joined = s.joined_rooms(&bob.id).await.unwrap();
    let j = joined.iter().find(|j| j.room.id == r.id).unwrap();
    let mentioned = (0..N).filter(|i| *i != BAD && i % 3 == 0).count() as i64;
    assert_eq!((j.unread_count, j.mention_count), (n, mentioned));
    // Sending one of them again returns it, unchanged.
    let mut again = new_msg(&r.id, &alice.id, "m3 again");
    again.client_id = Some("c3".into());
    match s.insert_message(again).await.unwrap() {
        Inserted::Existing(m) => assert_eq!(m.body, "m3"),
        Inserted::Created { .. } => panic!("a repeated client_id stored twice"),
    }
}

pub async fn room_with_member_in_one_read(b: Backend) {
    let s = b.store.clone();
    let alice = account(&*s, "alice").await;
    let bob = account(&*s, "bob").await;
    let r = room(&*s, "lobby", Some(&alice.id)).await;
    let (rr, m) = s.room_with_member(&r.id, &alice.id).await.unwrap();
    assert_eq!(rr.id, r.id);
    let m = m.expect("alice is a member");
    assert_eq!(
        (m.user_id.as_str(), m.role),
        (alice.id.as_str(), Role::Owner)
    );
    let (rr, m) = s.room_with_member(&r.id, &bob.id).await.unwrap();
    assert_eq!(rr.name, "lobby");
    assert!(m.is_none(), "bob is not a member");
    // Reads see every commit at once (SQLite serves this read on its own connections).
    for round in 0..3 {
        s.add_member(&r.id, &bob.id, Role::Member, 2).await.unwrap();
        let (rr, m) = s.room_with_member(&r.id, &bob.id).await.unwrap();
        assert_eq!(
            m.map(|m| m.role),
            Some(Role::Member),
            "round {round}: joined"
        );
        assert_eq!(rr.member_count, 2);
        s.remove_member(&r.id, &bob.id).await.unwrap();
        let (rr, m) = s.room_with_member(&r.id, &bob.id).await.unwrap();
        assert!(m.is_none(), "round {round}: left");
        assert_eq!(rr.member_count, 1);
    }
    assert_err!(
        s.room_with_member("no-such-room", &alice.id).await,
        StoreError::NotFound
    );
}
