// Scenario "store": the embedded store alone, no network and no node. Appends through the Store
// port in the soak's pattern (groups of 10, texts of 85 bytes, batches of 3: the size of a group
// commit at 1,000 msg/s), as fast as they go, on a database that starts empty; and for every
// window of messages, what each one cost the process: CPU time (the statements, the commits and
// the checkpoint thread), write system calls and bytes written to the disk, and the database
// file's size. What it shows is the price of the schema and of SQLite's page writes per message,
// and whether it grows with the database.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { ConversationId, UserId } from '@confab/protocol';
import { SqliteStore, newConversationId, newMessageId, newUserId, type AppendRequest } from '@confab/server';
import { intOption, type Opts, type Scenario } from '../main.js';
import { formatTable, median } from '../report.js';

const OPTIONS = {
  messages: { type: 'string', default: '1000000' },
  every: { type: 'string', default: '100000' },
  batch: { type: 'string', default: '3' },
  senders: { type: 'string', default: '200' },
  'group-size': { type: 'string', default: '10' },
  'text-bytes': { type: 'string', default: '85' },
  'client-ids': { type: 'string', default: 'counter' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `store: appends to the embedded store (SQLite) alone: CPU, writes and bytes per message as the database grows.
  --messages N       messages appended (default 1000000)
  --every K          messages per reported window (default 100000)
  --batch B          messages per append, i.e. per commit (default 3)
  --senders S        users sending (default 200), in groups of --group-size (default 10)
  --text-bytes T     text of each message (default 85)
  --client-ids K     counter: each sender's ids c1, c2, ... (the bench's clients); uuid: random
                     UUIDs (the SDK's)
The process is pinned to CPU 0 (with its checkpoint thread). Linux: reads /proc/self/io.`;

const int = (o: Opts, key: keyof typeof OPTIONS, min: number, max: number) => intOption(o, key, min, max);

/** The process's I/O counters, or undefined where /proc/self/io cannot be read. */
function io(): { syscw: number; writeBytes: number } | undefined {
  try {
    const f = Object.fromEntries(readFileSync('/proc/self/io', 'utf8').trim().split('\n').map((l) => l.split(': ') as [string, string]));
    return { syscw: Number(f.syscw), writeBytes: Number(f.write_bytes) };
  } catch {
    return undefined;
  }
}

interface Window { messages: number; userUs: number; sysUs: number; wallUs: number; writes: number | null; writeKiB: number | null; dbMiB: number }

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

export const store: Scenario = {
  name: 'store',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    return Math.ceil(int(o, 'messages', 1, 100_000_000) / 1000) + 120; // at least 1,000 appends a second
  },

  async run(o, ctx) {
    const s = {
      messages: int(o, 'messages', 1, 100_000_000), every: int(o, 'every', 1, 100_000_000), batch: int(o, 'batch', 1, 256),
      senders: int(o, 'senders', 2, 100_000), groupSize: int(o, 'group-size', 2, 1000), textBytes: int(o, 'text-bytes', 1, 16_000),
      clientIds: String(o['client-ids']),
    };
    if (s.clientIds !== 'counter' && s.clientIds !== 'uuid') throw new Error(`--client-ids must be counter or uuid, got "${s.clientIds}"`);
    if (ctx.pin) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
    const dir = mkdtempSync(join(tmpdir(), 'confab-bench-store-'));
    const path = join(dir, 'confab.db');
    const db = new SqliteStore({ path });
    ctx.onCleanup(async () => { await db.close(); rmSync(dir, { recursive: true, force: true }); });

    const users: UserId[] = [];
    for (let i = 0; i < s.senders; i++) {
      const id = newUserId();
      await db.createUser({ id, username: `store-${i}`, passwordHash: 'x', createdAt: Date.now() });
      users.push(id);
    }
    const convs: ConversationId[] = [];
    for (let g = 0; g * s.groupSize < s.senders; g++) {
      const members = users.slice(g * s.groupSize, (g + 1) * s.groupSize);
      convs.push((await db.createGroup({ id: newConversationId(), name: `store ${g}`, ownerId: members[0]!, memberIds: members, createdAt: Date.now() })).id);
    }
    ctx.log(`${s.senders} senders in ${convs.length} groups; appending ${s.messages} messages in batches of ${s.batch} to ${path}`);

    const sent = new Array<number>(s.senders).fill(0);
    const text = 'x'.repeat(s.textBytes);
    const request = (): AppendRequest => {
      const u = Math.floor(Math.random() * s.senders);
      sent[u]!++;
      const clientId = s.clientIds === 'uuid' ? randomUUID() : `c${sent[u]}`;
      return { conversationId: convs[Math.floor(u / s.groupSize)]!, kind: 'message', messageId: newMessageId(), senderId: users[u]!, clientId, text, createdAt: Date.now() };
    };

    const windows: Window[] = [];
    let cpu0 = process.cpuUsage(), t0 = performance.now(), io0 = io(), from = 0;
    for (let done = 0; done < s.messages;) {
      const n = Math.min(s.batch, s.messages - done, from + s.every - done); // windows end on their count
      const results = await db.append(Array.from({ length: n }, request));
      if (results.some((r) => !r.ok || r.duplicate)) throw new Error(`an append was refused or taken for a resend: ${JSON.stringify(results)}`);
      done += n;
      if (done - from === s.every || done === s.messages) {
        const cpu = process.cpuUsage(cpu0), t = performance.now(), io1 = io(), k = done - from;
        windows.push({
          messages: done, userUs: cpu.user / k, sysUs: cpu.system / k, wallUs: ((t - t0) * 1000) / k,
          writes: io0 && io1 ? (io1.syscw - io0.syscw) / k : null,
          writeKiB: io0 && io1 ? (io1.writeBytes - io0.writeBytes) / 1024 / k : null,
          dbMiB: statSync(path).size / 2 ** 20,
        });
        ctx.log(`${done} messages`);
        cpu0 = process.cpuUsage(); t0 = t; io0 = io1; from = done;
      }
    }
    const dbBytes = statSync(path).size;
    const orNull = (xs: (number | null)[]) => (xs.every((x): x is number => x !== null) ? round(median(xs)) : null);
    const system = {
      name: 'confab-sqlite', messages: s.messages, batch: s.batch,
      userUsPerMessage: round(median(windows.map((w) => w.userUs))), sysUsPerMessage: round(median(windows.map((w) => w.sysUs))),
      writesPerMessage: orNull(windows.map((w) => w.writes)), writeKiBPerMessage: orNull(windows.map((w) => w.writeKiB)),
      dbBytesPerMessage: Math.round(dbBytes / s.messages),
      windows: windows.map((w) => ({ ...w, userUs: round(w.userUs), sysUs: round(w.sysUs), wallUs: round(w.wallUs), writes: w.writes === null ? null : round(w.writes, 2), writeKiB: w.writeKiB === null ? null : round(w.writeKiB), dbMiB: round(w.dbMiB) })),
    };
    const head = ['messages', 'user us/msg', 'sys us/msg', 'wall us/msg', 'writes/msg', 'KiB written/msg', 'db MiB'];
    const cell = (v: number | null, d = 1) => (v === null ? '-' : v.toFixed(d));
    const rows = windows.map((w) => [String(w.messages), cell(w.userUs), cell(w.sysUs), cell(w.wallUs), cell(w.writes, 2), cell(w.writeKiB), cell(w.dbMiB, 0)]);
    return {
      systems: [system],
      params: s,
      lines: [
        `confab store (SQLite, WAL, synchronous=FULL, checkpoints on their thread): ${s.messages} messages of ${s.textBytes} bytes, ${s.batch} per commit, ${s.senders} senders in groups of ${s.groupSize}, client ids: ${s.clientIds}`,
        ...formatTable(head, rows),
        `medians per message: ${system.userUsPerMessage} us user, ${system.sysUsPerMessage} us system CPU, ${cell(system.writesPerMessage, 2)} write calls, ${cell(system.writeKiBPerMessage)} KiB written; database ${system.dbBytesPerMessage} bytes per message`,
      ],
    };
  },
};
