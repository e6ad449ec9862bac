// A PostgreSQL server of the test's own (initdb into a temp dir, a free port, trust auth), so
// a test can crash and restart it without disturbing the shared one. The binaries are taken
// from PG_BIN, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout). PostgreSQL
// refuses to run as root: as root, the server runs as the `postgres` OS user.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './redis-env.js';

const run = promisify(execFile);

function binDir(): string | undefined {
  if (process.env.PG_BIN) return existsSync(join(process.env.PG_BIN, 'pg_ctl')) ? process.env.PG_BIN : undefined;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

export class PrivatePostgres {
  private constructor(private readonly bin: string, private readonly dir: string, readonly port: number, private readonly asUser: string | undefined) {}

  /** postgres://postgres@127.0.0.1:<port>/postgres */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Why a private server cannot be made here, or undefined when it can. */
  static unavailable(): string | undefined {
    if (!binDir()) return 'PostgreSQL server binaries not found (set PG_BIN to the directory of pg_ctl)';
    if (userInfo().uid !== 0) return undefined;
    // As root the server runs as `postgres`, through runuser.
    if (spawnSync('id', ['-u', 'postgres'], { stdio: 'ignore' }).status !== 0) return 'running as root, and there is no postgres user to run the server as';
    if (spawnSync('runuser', ['--help'], { stdio: 'ignore' }).error) return 'running as root without runuser';
    return undefined;
  }

  /** initdb and start; the caller must `destroy()` it. */
  static async create(): Promise<PrivatePostgres> {
    const bin = binDir();
    if (!bin) throw new Error('PostgreSQL server binaries not found');
    const dir = mkdtempSync(join(tmpdir(), 'confab-pg-'));
    const asUser = userInfo().uid === 0 ? 'postgres' : undefined;
    if (asUser) {
      const { stdout } = await run('id', ['-u', asUser]);
      const { stdout: gid } = await run('id', ['-g', asUser]);
      chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
    }
    chmodSync(dir, 0o700);
    const p = new PrivatePostgres(bin, dir, await freePort(), asUser);
    await p.#exec('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    await p.start();
    return p;
  }

  async #exec(tool: string, args: string[]): Promise<void> {
    const cmd = join(this.bin, tool);
    if (this.asUser) await run('runuser', ['-u', this.asUser, '--', cmd, ...args], { cwd: this.dir, timeout: 60_000 });
    else await run(cmd, args, { cwd: this.dir, timeout: 60_000 });
  }

  /** Starts the server and waits until it accepts connections (crash recovery included). */
  async start(): Promise<void> {
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=on -c synchronous_commit=on`;
    await this.#exec('pg_ctl', ['-D', join(this.dir, 'data'), '-l', join(this.dir, 'log'), '-o', opts, '-w', '-t', '60', 'start']);
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 });
    await c.connect();
    await c.end();
  }

  /** Stops the server like a crash (`immediate`: no checkpoint, connections cut) or cleanly (`fast`). */
  async stop(mode: 'immediate' | 'fast' = 'immediate'): Promise<void> {
    await this.#exec('pg_ctl', ['-D', join(this.dir, 'data'), '-m', mode, '-w', '-t', '60', 'stop']);
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
