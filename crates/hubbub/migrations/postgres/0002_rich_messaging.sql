-- Reactions, mentions, attachments and full-text search.
-- Mirrors migrations/sqlite/0002_rich_messaging.sql.

CREATE TABLE reactions (
    message_id TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji      TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

-- One row per mentioned user; counts toward mention_count while seq > last_read_seq.
CREATE TABLE mentions (
    message_id TEXT COLLATE "C" NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    room_id    TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX mentions_user ON mentions(room_id, user_id, seq);

CREATE TABLE attachments (
    id           TEXT COLLATE "C" PRIMARY KEY,
    uploader_id  TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    message_id   TEXT COLLATE "C" REFERENCES messages(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT COLLATE "C" NOT NULL,
    width        BIGINT,
    height       BIGINT,
    thumb_sha256 TEXT COLLATE "C",
    created_at   BIGINT NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);
CREATE INDEX attachments_unsent ON attachments(created_at) WHERE message_id IS NULL;
CREATE INDEX attachments_sha ON attachments(sha256);
CREATE INDEX attachments_thumb ON attachments(thumb_sha256);

CREATE INDEX messages_thread ON messages(thread_root, seq) WHERE thread_root IS NOT NULL;
CREATE INDEX messages_pinned ON messages(room_id) WHERE pinned;

-- Full-text search. The 'simple' configuration: lower-casing, no stemming, no stop
-- words (like SQLite's unicode61 tokenizer). ASCII punctuation becomes a space first,
-- so that `x@y.com`, `3.14`, `foo_bar` or `a/b/c` are words separated by punctuation
-- (as for unicode61) rather than single e-mail/number/path tokens of PostgreSQL's
-- parser. Only the first 100,000 characters are indexed: that keeps every vector well
-- under PostgreSQL's 1 MB tsvector limit, however long a body may be configured to be.
ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    to_tsvector('simple'::regconfig, translate(left(body, 100000),
        E'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~',
        '                                '))
) STORED;
CREATE INDEX messages_search ON messages USING gin (search_vector);
