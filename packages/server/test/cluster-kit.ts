// Test kit for multi-node tests: the environment of a cluster node (one PostgreSQL schema, one
// Redis key prefix, one token secret shared by all nodes), nodes in this process or as child
// processes, and a tiny TCP balancer so a client whose node died reconnects to another one.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { startNode, type TestNode } from './helpers.js';
import { REDIS_URL, testPrefix } from './redis-env.js';

export interface ClusterEnv {
  /** DATABASE_URL with the test schema as search_path. */
  databaseUrl: string;
  redisUrl: string;
  redisKeyPrefix: string;
  jwtSecret: string;
}

export function clusterEnv(schemaUrl: string, redisUrl = REDIS_URL): ClusterEnv {
  return { databaseUrl: schemaUrl, redisUrl, redisKeyPrefix: testPrefix('cluster'), jwtSecret: randomBytes(32).toString('base64url') };
}

/** What every node of the cluster is started with (env form, for in-process and child nodes alike). */
export function nodeEnv(c: ClusterEnv, nodeId: string): Record<string, string> {
  return {
    STORE: 'postgres', DATABASE_URL: c.databaseUrl,
    BUS: 'redis', REDIS_URL: c.redisUrl, REDIS_KEY_PREFIX: c.redisKeyPrefix,
    NODE_ID: nodeId, JWT_SECRET: c.jwtSecret,
    SENDS_PER_SECOND: '10000', SEND_BURST: '10000',
  };
}

/** A node of the cluster in this process, on a free port. */
export function startClusterNode(c: ClusterEnv, nodeId: string, extraEnv: Record<string, string> = {}): Promise<TestNode> {
  return startNode({ env: { ...nodeEnv(c, nodeId), ...extraEnv } });
}

export interface Balancer {
  /** http://127.0.0.1:port of the balancer. */
  url: string;
  close(): Promise<void>;
}

/**
 * Forwards each TCP connection to the first backend (host:port) of `order()` that accepts it,
 * like a load balancer with health checks: when a node dies, new connections go to the next.
 */
export function startBalancer(order: () => string[]): Promise<Balancer> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };
  const server = createServer((client) => {
    track(client);
    client.pause();
    const backends = order();
    const attempt = (i: number) => {
      if (i >= backends.length || client.destroyed) return client.destroy();
      const [host, port] = backends[i]!.split(':') as [string, string];
      const up = connect(Number(port), host);
      up.once('error', () => attempt(i + 1));
      up.once('connect', () => {
        up.removeAllListeners('error');
        track(up);
        up.once('close', () => client.destroy());
        client.once('close', () => up.destroy());
        client.pipe(up);
        up.pipe(client);
        client.resume();
      });
    };
    attempt(0);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}

/** host:port of a node URL. */
export const hostPort = (url: string): string => new URL(url).host;
