// Setup over the REST API, shared by the scenarios: accounts and groups, made before the
// measurement starts. Registration hashes a password with argon2 (~50 ms of server CPU each), so
// requests run with bounded concurrency and every request has a deadline.
import type { Conversation, Session } from '@confab/protocol';

const PASSWORD = 'confab-bench-password';

/** POSTs JSON; resolves with the parsed answer of a 200/201, rejects with the status and text otherwise. */
export async function post<T>(url: string, path: string, body: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url + path, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  if (res.status !== 201 && res.status !== 200) throw new Error(`POST ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Runs fn(0..n-1) with at most `limit` calls in flight; rejects on the first failure. */
export async function pool<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, lane));
  return out;
}

/** Registers `n` fresh users (unique per run); each Session carries its device's access token. */
export function registerUsers(url: string, n: number, concurrency: number): Promise<Session[]> {
  const run = Date.now().toString(36);
  return pool(n, concurrency, (i) => post<Session>(url, '/v1/auth/register', { username: `b${run}_${i}`, password: PASSWORD, deviceName: 'bench' }));
}

/** Creates a group owned by members[0] with the other members in it. */
export function createGroup(url: string, name: string, members: Session[]): Promise<Conversation> {
  const [owner, ...rest] = members;
  if (!owner) throw new Error('a group needs at least one member');
  return post<Conversation>(url, '/v1/conversations', { name, members: rest.map((s) => s.user.username) }, owner.accessToken);
}

/** A node's /metrics: the value of one sample (labels matched as a substring, e.g. 'type="hello"'; 0 if absent), and every sample of a metric by its one label. */
export interface MetricsView {
  get(name: string, labels?: string): number;
  byLabel(name: string, label: string): Record<string, number>;
}

export async function scrapeMetrics(url: string): Promise<MetricsView> {
  return parseMetrics(await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text());
}

/** The samples of a Prometheus text exposition. */
export function parseMetrics(text: string): MetricsView {
  const samples = [...text.matchAll(/^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/gm)].map((m) => ({ name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) }));
  return {
    get: (name, labels = '') => samples.find((x) => x.name === name && x.labels.includes(labels))?.value ?? 0,
    byLabel(name, label) {
      const out: Record<string, number> = {};
      for (const x of samples) {
        const v = x.name === name ? new RegExp(`${label}="([^"]+)"`).exec(x.labels)?.[1] : undefined;
        if (v !== undefined) out[v] = x.value;
      }
      return out;
    },
  };
}
