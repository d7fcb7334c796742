//! Black-box API suite: starts the real `hubbub` binary per test and checks the
//! behaviour SPEC.md promises over HTTP and the WebSocket gateway.

#[path = "../common/mod.rs"]
mod common;
mod support;

mod auth;
mod avatars;
mod bad_input;
mod gateway;
mod guarantees;
mod messages;
mod ops;
mod profile;
mod rooms;
mod web;
