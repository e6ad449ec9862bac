// SDK clients for the integration tests: each records what it saw, per conversation.
import { after, before } from 'node:test';
import { WebSocket } from 'ws';
import type { Message, Session } from '@confab/protocol';
import { ConfabApi, ConfabClient, type ClientOptions } from '@confab/sdk';
import { startNode, type TestNode } from './helpers.js';

export interface Device {
  api: ConfabApi;
  client: ConfabClient;
  session: Session;
  /** Every `message` event, in the order received. */
  seen: Message[];
  /** Resolves once `n` messages of `conversationId` have been seen. */
  waitFor(conversationId: string, n: number, timeoutMs?: number): Promise<Message[]>;
  of(conversationId: string): Message[];
}

/** A logged-in device of `session`'s user: a ConfabClient connected over a real socket. */
export async function device(url: string, session: Session, opts: Partial<ClientOptions> = {}): Promise<Device> {
  const api = new ConfabApi({ baseUrl: url });
  api.useSession(session);
  const client = new ConfabClient({ url, WebSocket, getToken: ({ expired }) => api.accessToken(expired), reconnect: { minDelayMs: 20, maxDelayMs: 200 }, ...opts });
  const seen: Message[] = [];
  const waiters: (() => void)[] = [];
  client.on('message', (m) => {
    seen.push(m);
    for (const w of waiters.splice(0)) w();
  });
  await client.connect();
  const of = (cid: string) => seen.filter((m) => m.conversationId === cid);
  return {
    api, client, session, seen, of,
    waitFor(cid, n, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out: ${of(cid).length}/${n} messages of ${cid}`)), timeoutMs);
        const check = () => {
          if (of(cid).length >= n) {
            clearTimeout(timer);
            resolve(of(cid));
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

/** A second login of the same user (a new device id and token pair). */
export async function login(url: string, username: string, password = 'correct horse'): Promise<Session> {
  return new ConfabApi({ baseUrl: url }).login(username, password);
}

/** Asserts-friendly view: seqs of a conversation's entries as seen by a device. */
export const seqs = (ms: readonly Message[]): number[] => ms.map((m) => m.seq);

/**
 * One node for the enclosing suite (started before, closed after), and devices on it that are
 * closed with it.
 */
export function useNode(opts: Parameters<typeof startNode>[0] = {}): { readonly url: string; readonly node: TestNode; dev: (session: Session, o?: Partial<ClientOptions>) => Promise<Device> } {
  let node: TestNode | undefined;
  const devices: Device[] = [];
  before(async () => { node = await startNode(opts); });
  after(async () => {
    await Promise.all(devices.map((d) => d.client.close()));
    await node?.close();
  });
  return {
    get url() { return node!.url; },
    get node() { return node!; },
    async dev(session, o = {}) {
      const d = await device(node!.url, session, o);
      devices.push(d);
      return d;
    },
  };
}
