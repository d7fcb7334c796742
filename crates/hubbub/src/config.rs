//! Typed settings for `hubbub serve`: defaults → `HUBBUB_*` environment → flags.
//! Passed through application state, never a global, so two servers can run in one
//! process (tests do).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    Open,
    Closed,
}

#[derive(Clone, Args)]
pub struct Settings {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "HUBBUB_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Folder for the database and uploaded files.
    #[arg(long, env = "HUBBUB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: sqlite://path (default: <data-dir>/hubbub.db) or postgres://…
    #[arg(long, env = "HUBBUB_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Most connections this node keeps open to PostgreSQL (ignored for SQLite).
    #[arg(long, env = "HUBBUB_DB_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,

    /// How long a database operation waits for a free PostgreSQL connection before it
    /// fails, in milliseconds (ignored for SQLite).
    #[arg(long, env = "HUBBUB_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub db_acquire_timeout_ms: u64,

    /// Redis URL for multi-node fan-out and presence (needs PostgreSQL).
    #[arg(long, env = "HUBBUB_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel (several clusters can share one Redis).
    #[arg(long, env = "HUBBUB_REDIS_PREFIX", default_value = "hubbub")]
    pub redis_prefix: String,

    /// Public origin of the server (e.g. https://chat.example.com), accepted in
    /// `Origin` headers besides the request's own host.
    #[arg(long, env = "HUBBUB_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Account registration: open or closed (admins create accounts).
    #[arg(long, env = "HUBBUB_REGISTRATION", value_enum, default_value = "open")]
    pub registration: Registration,

    /// Switches guest sessions off server-wide.
    #[arg(long, env = "HUBBUB_NO_GUESTS")]
    pub no_guests: bool,

    /// Lifts every write, sign-up and flood limit (for benchmarks).
    #[arg(long, env = "HUBBUB_NO_RATE_LIMIT")]
    pub no_rate_limit: bool,

    /// Messages per minute per user (gateway and REST).
    #[arg(long, env = "HUBBUB_SEND_RATE_PER_MIN", default_value_t = 30)]
    pub send_rate_per_min: u32,
    #[arg(long, env = "HUBBUB_SEND_BURST", default_value_t = 10)]
    pub send_burst: u32,

    /// Other writes (edits, reactions, typing, read) per minute per user.
    #[arg(long, env = "HUBBUB_WRITE_RATE_PER_MIN", default_value_t = 120)]
    pub write_rate_per_min: u32,
    #[arg(long, env = "HUBBUB_WRITE_BURST", default_value_t = 30)]
    pub write_burst: u32,

    /// Guest sign-ups per minute per IP address.
    #[arg(long, env = "HUBBUB_GUEST_SIGNUPS_PER_MIN", default_value_t = 60)]
    pub guest_signups_per_min: u32,

    /// Longest message body, in Unicode code points.
    #[arg(long, env = "HUBBUB_MAX_MESSAGE_CHARS", default_value_t = 4000)]
    pub max_message_chars: usize,

    /// Largest WebSocket frame, in bytes.
    #[arg(long, env = "HUBBUB_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Largest avatar upload, in bytes.
    #[arg(long, env = "HUBBUB_MAX_AVATAR_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_avatar_bytes: usize,

    /// Largest attachment upload, in bytes.
    #[arg(long, env = "HUBBUB_MAX_ATTACHMENT_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_attachment_bytes: usize,

    /// Per-connection outbound queue, in events; a connection whose queue overflows
    /// is disconnected (it can resume).
    #[arg(long, env = "HUBBUB_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,

    /// Rooms above this many members send no presence or member events.
    #[arg(long, env = "HUBBUB_LARGE_ROOM_THRESHOLD", default_value_t = 1000)]
    pub large_room_threshold: i64,

    /// How long a user stays online after their last connection closes (a page reload
    /// must not flap presence). At most 30000 per the delivery guarantees.
    #[arg(long, env = "HUBBUB_PRESENCE_GRACE_MS", default_value_t = 10_000)]
    pub presence_grace_ms: u64,
}

impl Settings {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("hubbub.db").display()))
    }
}

impl std::fmt::Debug for Settings {
    // Database and Redis URLs may hold passwords: they are masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(mask_url))
            .field("db_max_connections", &self.db_max_connections)
            .field("db_acquire_timeout_ms", &self.db_acquire_timeout_ms)
            .field("redis_url", &self.redis_url.as_deref().map(mask_url))
            .field("registration", &self.registration)
            .field("no_guests", &self.no_guests)
            .field("no_rate_limit", &self.no_rate_limit)
            .field("outbound_queue", &self.outbound_queue)
            .field("large_room_threshold", &self.large_room_threshold)
            .field("presence_grace_ms", &self.presence_grace_ms)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_passwords() {
        assert_eq!(
            super::mask_url("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::mask_url("sqlite://./x.db"), "sqlite://./x.db");
    }
}
