-- Hubbub schema, SQLite. Times are milliseconds since the Unix epoch.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,               -- user | guest | bot
    username      TEXT NOT NULL,
    -- lower-cased username while the name is taken; NULL once a guest has gone
    name_key      TEXT UNIQUE,
    display_name  TEXT,
    password_hash TEXT,
    bio           TEXT NOT NULL DEFAULT '',
    status_text   TEXT NOT NULL DEFAULT '',
    avatar_hash   TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER
);

CREATE TABLE avatars (
    hash         TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    data         BLOB NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE rooms (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    topic          TEXT NOT NULL DEFAULT '',
    kind           TEXT NOT NULL,              -- public | private | dm
    password_hash  TEXT,
    guests_allowed INTEGER NOT NULL,
    starts_at      INTEGER,
    ends_at        INTEGER,
    member_limit   INTEGER,
    created_by     TEXT,
    created_at     INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    last_pos       INTEGER NOT NULL DEFAULT 0,
    member_count   INTEGER NOT NULL DEFAULT 0,
    is_default     INTEGER NOT NULL DEFAULT 0,
    dm_key         TEXT UNIQUE
);

CREATE TABLE members (
    room_id            TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role               TEXT NOT NULL,
    joined_at          INTEGER NOT NULL,
    last_read_seq      INTEGER NOT NULL DEFAULT 0,
    notification_level TEXT,
    muted_until        INTEGER,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_user ON members(user_id);

CREATE TABLE messages (
    id          TEXT PRIMARY KEY,
    room_id     TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    pos         INTEGER NOT NULL,
    author_id   TEXT NOT NULL REFERENCES users(id),
    body        TEXT NOT NULL,
    html        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    edited_at   INTEGER,
    deleted     INTEGER NOT NULL DEFAULT 0,
    pinned      INTEGER NOT NULL DEFAULT 0,
    reply_to    TEXT,
    thread_root TEXT,
    reply_count INTEGER NOT NULL DEFAULT 0,
    client_id   TEXT,
    mentions    TEXT NOT NULL DEFAULT '[]'     -- JSON array of user ids
);
CREATE UNIQUE INDEX messages_room_seq ON messages(room_id, seq);
CREATE INDEX messages_room_pos ON messages(room_id, pos);
CREATE UNIQUE INDEX messages_author_client ON messages(author_id, client_id)
    WHERE client_id IS NOT NULL;
