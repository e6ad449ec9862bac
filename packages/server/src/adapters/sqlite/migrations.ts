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
];
