// Versioned schema of the PostgreSQL store, and the runner that applies it. It exists so that
// several nodes can start at once against one database: the runner takes an advisory lock, then
// applies each missing migration once, in its own transaction, recording it in
// `schema_migrations`. Append new migrations; never edit an applied one.
//
// The schema is the SQLite one (docs/architecture.md, "Store schema") in PostgreSQL types:
// UUID ids, BIGINT seqs and millisecond timestamps. Every unique key of `messages` starts with
// `conversation_id`, so the table can be hash-partitioned (or distributed) by conversation
// without changing a query or a constraint.
import type { PoolClient } from 'pg';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * The append function (the algorithm of append.ts, statement for statement SqliteStore#appendOne).
 * `confab_append` (migration 3) and `confab_append_v2` (migration 4: the same, also returning the
 * membership version each entry was committed under, `mv`) come from this one text. It is part
 * of those migrations: a fresh database runs them all, so change the algorithm in a new migration,
 * never here.
 */
function appendFunction(name: string, withVersion: boolean, membersFirst = false): string {
  // The idempotency lookup, and the membership check that comes before it (migration 5) or after it (3, 4).
  const lookup = `SELECT * INTO ex FROM messages WHERE conversation_id = p_conv[i] AND sender_id = p_sender[i] AND client_id = p_client[i];
    IF FOUND THEN`;
  const notMember = 'NOT EXISTS (SELECT 1 FROM members WHERE conversation_id = p_conv[i] AND user_id = p_sender[i])';
  return `${membersFirst ? 'CREATE OR REPLACE' : 'CREATE'} FUNCTION ${name}(
  p_conv uuid[], p_kind text[], p_id uuid[], p_sender uuid[], p_client text[], p_text text[], p_at bigint[], p_target uuid[]
) RETURNS TABLE (status text, message json${withVersion ? ', mv bigint' : ''})
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  ex messages%ROWTYPE;
  tg messages%ROWTYPE;
  s bigint;
BEGIN
  -- Lock the batch's conversations in one fixed order: writers on other nodes queue here, and
  -- two batches never hold each other's rows (no deadlock).
  PERFORM 1 FROM conversations WHERE id = ANY(p_conv) ORDER BY id FOR NO KEY UPDATE;
  FOR i IN 1 .. coalesce(array_length(p_conv, 1), 0) LOOP
    message := NULL;
${withVersion ? '    mv := NULL;\n' : ''}    ${membersFirst ? `IF ${notMember} THEN
      status := 'not_member';
      RETURN NEXT;
      CONTINUE;
    END IF;
    ` : ''}${lookup}
      IF ex.kind <> p_kind[i] OR ex.target_id IS DISTINCT FROM p_target[i] THEN
        status := 'client_id_reused';
      ELSE
        status := 'duplicate';
        s := ex.seq;
${withVersion ? '        SELECT c.members_version INTO mv FROM conversations c WHERE c.id = p_conv[i];\n' : ''}      END IF;
${membersFirst ? '' : `    ELSIF ${notMember} THEN
      status := 'not_member';
`}    ELSE
      status := 'ok';
      tg := NULL;
      IF p_kind[i] <> 'message' THEN
        SELECT * INTO tg FROM messages WHERE conversation_id = p_conv[i] AND id = p_target[i];
        IF NOT FOUND OR tg.kind <> 'message' THEN
          status := 'message_not_found';
        ELSIF tg.deleted_at IS NOT NULL THEN
          status := 'message_deleted';
        END IF;
      END IF;
      IF status = 'ok' THEN
        UPDATE conversations SET last_seq = last_seq + 1,
          last_message_seq = CASE WHEN p_kind[i] = 'message' THEN last_seq + 1 ELSE last_message_seq END,
          updated_at = CASE WHEN p_kind[i] = 'message' THEN p_at[i] ELSE updated_at END
        WHERE id = p_conv[i] RETURNING last_seq${withVersion ? ', members_version INTO s, mv' : ' INTO s'};
        INSERT INTO messages (conversation_id, seq, id, kind, sender_id, client_id, text, created_at, target_id, target_seq)
        VALUES (p_conv[i], s, p_id[i], p_kind[i], p_sender[i], p_client[i], p_text[i], p_at[i], tg.id, tg.seq);
        IF p_kind[i] = 'edit' THEN
          UPDATE messages SET text = p_text[i], edited_at = p_at[i] WHERE conversation_id = p_conv[i] AND seq = tg.seq;
        ELSIF p_kind[i] = 'delete' THEN
          UPDATE messages SET text = '', deleted_at = p_at[i] WHERE conversation_id = p_conv[i] AND seq = tg.seq;
          -- A deleted message's earlier edits must not keep its text either.
          UPDATE messages SET text = '' WHERE conversation_id = p_conv[i] AND target_id = tg.id AND kind = 'edit';
        ELSE
          -- A sender has received and read what they sent.
          UPDATE members SET read_seq = GREATEST(read_seq, s), delivered_seq = GREATEST(delivered_seq, s)
          WHERE conversation_id = p_conv[i] AND user_id = p_sender[i];
        END IF;
      END IF;
    END IF;
    IF status IN ('ok', 'duplicate') THEN
      SELECT to_json(x) INTO message FROM (
        SELECT m.conversation_id, m.seq, m.id, m.kind, m.sender_id, u.username, m.client_id, m.text,
               m.created_at, m.target_id, m.target_seq, m.edited_at, m.deleted_at
        FROM messages m JOIN users u ON u.id = m.sender_id WHERE m.conversation_id = p_conv[i] AND m.seq = s) x;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$fn$;`;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial',
    sql: `
CREATE TABLE users (
  id            UUID PRIMARY KEY,
  username      TEXT COLLATE "C" NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  created_at    BIGINT NOT NULL
);
CREATE TABLE devices (
  id         UUID PRIMARY KEY,
  user_id    UUID NOT NULL REFERENCES users(id),
  name       TEXT,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE INDEX devices_user ON devices(user_id);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  device_id  UUID NOT NULL REFERENCES devices(id),
  user_id    UUID NOT NULL REFERENCES users(id),
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at    BIGINT
);
CREATE INDEX refresh_tokens_device ON refresh_tokens(device_id);
CREATE TABLE conversations (
  id               UUID PRIMARY KEY,
  kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
  name             TEXT,
  direct_key       TEXT UNIQUE,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  last_seq         BIGINT NOT NULL DEFAULT 0,
  last_message_seq BIGINT NOT NULL DEFAULT 0,
  member_count     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE members (
  conversation_id UUID NOT NULL REFERENCES conversations(id),
  user_id         UUID NOT NULL REFERENCES users(id),
  role            TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  joined_at       BIGINT NOT NULL,
  read_seq        BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_user ON members(user_id);
CREATE TABLE messages (
  conversation_id UUID NOT NULL,
  seq             BIGINT NOT NULL,
  id              UUID NOT NULL,
  kind            TEXT NOT NULL CHECK (kind IN ('message', 'edit', 'delete')),
  sender_id       UUID NOT NULL,
  client_id       TEXT NOT NULL,
  text            TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  target_id       UUID,
  target_seq      BIGINT,
  edited_at       BIGINT,
  deleted_at      BIGINT,
  PRIMARY KEY (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_client ON messages(conversation_id, sender_id, client_id);
CREATE UNIQUE INDEX messages_id ON messages(conversation_id, id);
-- A delete blanks the target's earlier edits: find them without scanning the conversation.
CREATE INDEX messages_target ON messages(conversation_id, target_id) WHERE target_id IS NOT NULL;
`,
  },
  {
    version: 2,
    name: 'receipts and presence',
    sql: `
ALTER TABLE members ADD COLUMN delivered_seq BIGINT NOT NULL DEFAULT 0;
UPDATE members SET delivered_seq = read_seq;
ALTER TABLE users ADD COLUMN last_seen_at BIGINT;
ALTER TABLE users ADD COLUMN hide_last_seen BOOLEAN NOT NULL DEFAULT false;
`,
  },
  {
    version: 3,
    name: 'append function',
    // The append algorithm of append.ts, run inside the database so that a batch costs one
    // round trip instead of several per entry. Statement for statement it is
    // SqliteStore#appendOne (appendFunction above); change both together, in a new migration.
    sql: `
${appendFunction('confab_append', false)}
`,
  },
  {
    version: 4,
    name: 'membership version',
    // members_version is raised by statement triggers on members, so that no code path (nor a
    // node of an earlier version during a rolling upgrade) can change members without it.
    // confab_append_v2 is confab_append returning the version each entry was committed under;
    // the old function stays for nodes of the earlier version until they are all upgraded.
    sql: `
ALTER TABLE conversations ADD COLUMN members_version bigint NOT NULL DEFAULT 0;
CREATE FUNCTION confab_members_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
  UPDATE conversations c SET members_version = c.members_version + 1 WHERE c.id IN (SELECT DISTINCT conversation_id FROM changed);
  RETURN NULL;
END
$fn$;
CREATE TRIGGER members_added AFTER INSERT ON members REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION confab_members_changed();
CREATE TRIGGER members_removed AFTER DELETE ON members REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION confab_members_changed();
${appendFunction('confab_append_v2', true)}
`,
  },
  {
    version: 5,
    name: 'membership before idempotency',
    // A removed member's resend of an old client id is refused (not_member) like any other
    // send from a non-member, instead of answering with the message's current state.
    sql: `
${appendFunction('confab_append_v2', true, true)}
`,
  },
];

/** First key of the two-key advisory lock taken while migrating ("cfab"); the second is the search_path's hash. */
const LOCK_CLASS = 0x63666162;

/**
 * Applies the missing migrations on `client`'s connection. Nodes that start together queue on a
 * session-level advisory lock (per search_path, so separate schemas don't wait for each other);
 * the lock goes away with the connection if the process dies mid-way.
 */
export async function migrate(client: PoolClient, createSchema?: string): Promise<void> {
  await client.query(`SELECT pg_advisory_lock(${LOCK_CLASS}, hashtext(current_setting('search_path')))`);
  try {
    if (createSchema !== undefined) await client.query(`CREATE SCHEMA IF NOT EXISTS "${createSchema}"`);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((r) => r.version));
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
  } finally {
    await client.query(`SELECT pg_advisory_unlock(${LOCK_CLASS}, hashtext(current_setting('search_path')))`).catch(() => undefined);
  }
}
