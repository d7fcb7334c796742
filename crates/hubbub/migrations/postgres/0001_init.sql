-- Hubbub schema, PostgreSQL. Mirrors migrations/sqlite/0001_init.sql.
-- Times are milliseconds since the Unix epoch (BIGINT).
-- Ids, name keys and room names use the "C" collation: byte order, exactly as SQLite
-- compares and sorts them (member paging by `user_id > $after` relies on it), and
-- btree indexes on them serve those comparisons whatever the database's locale.

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    kind          TEXT NOT NULL,               -- user | guest | bot
    username      TEXT NOT NULL,
    -- lower-cased username while the name is taken; NULL once a guest has gone
    name_key      TEXT COLLATE "C" UNIQUE,
    display_name  TEXT,
    password_hash TEXT,
    bio           TEXT NOT NULL DEFAULT '',
    status_text   TEXT NOT NULL DEFAULT '',
    avatar_hash   TEXT COLLATE "C",
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT
);

CREATE TABLE avatars (
    hash         TEXT COLLATE "C" PRIMARY KEY,
    content_type TEXT NOT NULL,
    data         BYTEA NOT NULL
);

CREATE TABLE sessions (
    token_hash   TEXT COLLATE "C" PRIMARY KEY,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE rooms (
    id             TEXT COLLATE "C" PRIMARY KEY,
    name           TEXT COLLATE "C" NOT NULL,
    topic          TEXT NOT NULL DEFAULT '',
    kind           TEXT NOT NULL,              -- public | private | dm
    password_hash  TEXT,
    guests_allowed BOOLEAN NOT NULL,
    starts_at      BIGINT,
    ends_at        BIGINT,
    member_limit   BIGINT,
    created_by     TEXT COLLATE "C",
    created_at     BIGINT NOT NULL,
    last_seq       BIGINT NOT NULL DEFAULT 0,
    last_pos       BIGINT NOT NULL DEFAULT 0,
    member_count   BIGINT NOT NULL DEFAULT 0,
    is_default     BOOLEAN NOT NULL DEFAULT FALSE,
    dm_key         TEXT COLLATE "C" UNIQUE
);

CREATE TABLE members (
    room_id            TEXT COLLATE "C" NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user_id            TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role               TEXT NOT NULL,
    joined_at          BIGINT NOT NULL,
    last_read_seq      BIGINT NOT NULL DEFAULT 0,
    notification_level TEXT,
    muted_until        BIGINT,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_user ON members(user_id);

CREATE TABLE messages (
    id          TEXT COLLATE "C" PRIMARY KEY,
    room_id     TEXT COLLATE "C" NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    pos         BIGINT NOT NULL,
    author_id   TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    body        TEXT NOT NULL,
    html        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    edited_at   BIGINT,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    pinned      BOOLEAN NOT NULL DEFAULT FALSE,
    reply_to    TEXT COLLATE "C",
    thread_root TEXT COLLATE "C",
    reply_count BIGINT NOT NULL DEFAULT 0,
    client_id   TEXT COLLATE "C",
    mentions    JSONB NOT NULL DEFAULT '[]'    -- JSON array of user ids
);
CREATE UNIQUE INDEX messages_room_seq ON messages(room_id, seq);
CREATE INDEX messages_room_pos ON messages(room_id, pos);
CREATE UNIQUE INDEX messages_author_client ON messages(author_id, client_id)
    WHERE client_id IS NOT NULL;
