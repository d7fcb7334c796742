//! Black-box suite for rich messaging (SPEC §5 dm, §6, §7, §8): reactions, threads,
//! mentions and notifications, pins, DMs, search, attachments and resume. Every test
//! runs on both backends: `<module>::<test>::sqlite` and `<module>::<test>::postgres`
//! (the latter on a fresh database under `HUBBUB_TEST_DATABASE_URL`; skipped without
//! it unless `HUBBUB_E2E=require`).

#[path = "../common/mod.rs"]
mod common;
#[macro_use]
mod support;

mod attachments;
mod dms;
mod mentions;
mod pins;
mod reactions;
mod resume;
mod search;
mod threads;
