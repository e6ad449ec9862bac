// Starting and stopping a peer server (peer-server.ts) for a side-by-side run: a child process on
// a free port, pinned like the Confab node, with the CPU and RSS readings the steps report.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { nodeCommand } from './node.js';

export const PEER_KINDS = ['raw-ws', 'raw-ws-preframed', 'socketio', 'socketio-redis', 'socketio-pg'] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

const SCRIPT = fileURLToPath(new URL('./peer-server.js', import.meta.url));

export interface Peer { kind: PeerKind; url: string; pid: number; stop(): Promise<void> }

export async function startPeer(kind: PeerKind, port: number, core: number | undefined, env: Record<string, string> = {}): Promise<Peer> {
  const [cmd, args] = nodeCommand([SCRIPT, kind, String(port)], core);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer ${kind} did not start within 20 s: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => { if (line === 'listening') { clearTimeout(timer); resolve(); } });
    void exited.then(() => { clearTimeout(timer); reject(new Error(`peer ${kind} exited: ${stderr}`)); });
  });
  return {
    kind, url: `http://127.0.0.1:${port}`, pid: child.pid!,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
