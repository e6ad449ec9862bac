// Versioned schema of the embedded store. Append new migrations; never edit an applied one.
// The schema is documented in docs/architecture.md ("Store schema").

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  username      TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at    INTEGER NOT NULL
);
CREATE TABLE devices (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users(id),
  name       TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX devices_user ON devices(user_id);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  device_id  TEXT NOT NULL REFERENCES devices(id),
  user_id    TEXT NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
);
CREATE INDEX refresh_tokens_device ON refresh_tokens(device_id);
CREATE TABLE conversations (
  id               TEXT PRIMARY KEY,
  kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
  name             TEXT,
  direct_key       TEXT UNIQUE,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  last_seq         INTEGER NOT NULL DEFAULT 0,
  last_message_seq INTEGER NOT NULL DEFAULT 0,
  member_count     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE members (
  conversation_id TEXT NOT NULL REFERENCES conversations(id),
  user_id         TEXT NOT NULL REFERENCES users(id),
  role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  joined_at       INTEGER NOT NULL,
  read_seq        INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members(user_id);
CREATE TABLE messages (
  conversation_id TEXT NOT NULL,
  seq             INTEGER NOT NULL,
  id              TEXT NOT NULL,
  kind            TEXT NOT NULL CHECK (kind IN ('message', 'edit', 'delete')),
  sender_id       TEXT NOT NULL,
  client_id       TEXT NOT NULL,
  text            TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  target_id       TEXT,
  target_seq      INTEGER,
  edited_at       INTEGER,
  deleted_at      INTEGER,
  PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_client ON messages(conversation_id, sender_id, client_id);
CREATE UNIQUE INDEX messages_id ON messages(conversation_id, id);
`,
  },
  {
    version: 2,
    name: 'receipts and presence',
    sql: `
ALTER TABLE members ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0;
UPDATE members SET delivered_seq = read_seq;
ALTER TABLE users ADD COLUMN last_seen_at INTEGER;
ALTER TABLE users ADD COLUMN hide_last_seen INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 3,
    name: 'membership version',
    // Raised by triggers, so that no code path that adds or removes a member can forget it.
    sql: `
ALTER TABLE conversations ADD COLUMN members_version INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER members_added AFTER INSERT ON members
BEGIN UPDATE conversations SET members_version = members_version + 1 WHERE id = NEW.conversation_id; END;
CREATE TRIGGER members_removed AFTER DELETE ON members
BEGIN UPDATE conversations SET members_version = members_version + 1 WHERE id = OLD.conversation_id; END;
`,
  },
  {
    version: 4,
    name: 'compact message keys',
    // Users and conversations get a small integer key, `num`, and the log and its two indexes
    // name them by it instead of by their 36-character ids: an entry of the client-id index
    // shrinks from about 85 to about 15 bytes, a row of the log by about 70. Fewer pages per
    // message, so fewer pages written per commit (docs/performance.md, "SQLite: compact keys in the log").
    // LEFT JOIN into NOT NULL columns: a message whose conversation or sender is missing fails
    // the migration (and its transaction) instead of being dropped.
    sql: `
ALTER TABLE users ADD COLUMN num INTEGER NOT NULL DEFAULT 0;
UPDATE users SET num = rowid;
CREATE UNIQUE INDEX users_num ON users(num);
ALTER TABLE conversations ADD COLUMN num INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET num = rowid;
CREATE UNIQUE INDEX conversations_num ON conversations(num);
CREATE TABLE messages_v4 (
  conv       INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  id         TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('message', 'edit', 'delete')),
  sender     INTEGER NOT NULL,
  client_id  TEXT NOT NULL,
  text       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  target_id  TEXT,
  target_seq INTEGER,
  edited_at  INTEGER,
  deleted_at INTEGER,
  PRIMARY KEY (conv, seq)
) WITHOUT ROWID;
INSERT INTO messages_v4 (conv, seq, id, kind, sender, client_id, text, created_at, target_id, target_seq, edited_at, deleted_at)
  SELECT c.num, m.seq, m.id, m.kind, u.num, m.client_id, m.text, m.created_at, m.target_id, m.target_seq, m.edited_at, m.deleted_at
  FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id LEFT JOIN users u ON u.id = m.sender_id;
DROP TABLE messages;
ALTER TABLE messages_v4 RENAME TO messages;
CREATE UNIQUE INDEX messages_client ON messages(conv, sender, client_id);
CREATE UNIQUE INDEX messages_id ON messages(conv, id);
`,
  },
];
