//! Store conformance: one set of behaviour tests, written against `Arc<dyn Store>`,
//! run on every backend. SQLite always (a fresh file per test); PostgreSQL when
//! `HUBBUB_TEST_DATABASE_URL` is set (a fresh database per test, dropped afterwards
//! even when the test fails).
//!
//! Each case is an `async fn(Backend)` in `cases.rs` (rich messaging and export/import:
//! `rich.rs`); `conformance!` turns the list into `sqlite::<case>` and `postgres::<case>`
//! tests.

macro_rules! assert_err {
    ($e:expr, $pat:pat) => {
        match $e {
            Err($pat) => {}
            Err(other) => panic!("expected {}, got error {other:?}", stringify!($pat)),
            Ok(v) => panic!("expected {}, got Ok({v:?})", stringify!($pat)),
        }
    };
}

mod backend;
mod cases;
mod rich;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::backend::run_sqlite(|b| Box::pin(crate::cases::$case(b))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    crate::backend::run_postgres(|b| Box::pin(crate::cases::$case(b))).await;
                }
            )*
        }
    };
}

conformance!(
    ping_and_reopen,
    first_account_is_admin,
    concurrent_first_accounts_make_one_admin,
    names_are_unique_case_insensitively,
    guest_name_freed_when_sessions_expire,
    guest_name_freed_by_release,
    sessions_expire_touch_and_delete,
    profile_patch_password_admin_last_seen,
    search_users_matches_and_escapes,
    avatars_set_share_and_clear,
    rooms_create_and_default,
    update_room_patch_semantics,
    delete_room_cascades,
    public_rooms_listing,
    membership_add_remove_and_count,
    member_limit_is_enforced,
    member_limit_holds_under_concurrency,
    members_paging,
    neighbours_honour_size_and_dms,
    messages_seq_and_pos,
    thread_reply_bumps_root,
    delete_leaves_a_tombstone,
    client_id_is_idempotent,
    history_cursors,
    changes_since_snapshot,
    changes_since_reads_one_snapshot,
    mark_read_clamps_and_never_goes_back,
    unread_counts,
    concurrent_inserts_get_dense_seqs,
    concurrent_same_client_id_stores_one,
    a_bad_send_fails_alone_among_concurrent_ones,
    room_with_member_in_one_read,
    // rich messaging (rich.rs)
    reactions_add_remove_and_order,
    pins_set_unset_and_list,
    thread_pages,
    mention_counts,
    notification_levels_explicit_and_given,
    dms_find_create_and_conflict,
    concurrent_create_dm_makes_one,
    search_scope_filters_and_snippets,
    search_odd_terms_are_harmless,
    attachments_claim_and_cleanup,
    concurrent_reactions_pins_and_claims,
    export_import_round_trip,
);
