//! Hubbub: a self-hosted real-time group chat server with its web client built in.
//!
//! Layers (see docs/ARCHITECTURE.md): transport (`http`, `gateway`, `wire`) →
//! domain (`domain`) → store (`store`) and hub (`hub`).

pub mod app;
pub mod bench;
pub mod cluster;
pub mod config;
pub mod domain;
pub mod gateway;
pub mod http;
pub mod hub;
pub mod model;
pub mod store;
pub mod transfer;
pub mod util;
pub mod web;
pub mod wire;
