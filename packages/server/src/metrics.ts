// The node's Prometheus metrics (prom-client), served at GET /metrics. One registry per node,
// so several nodes in one process (tests) do not mix their figures. The counters bumped once per
// frame are plain numbers handed to prom-client when Prometheus scrapes (Tally); the other
// hot-path counters are label children resolved once; readings of state (connections, buffers,
// queue depth) are taken at scrape time, not on every change. docs/operations.md lists every metric.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the node reads at scrape time. */
export interface MetricSources {
  connections(): number;
  /** WebSocket connections not yet past `hello`. */
  pendingConnections(): number;
  /** Bytes waiting to be written to the node's connections: the sum and the largest. */
  outbound(): { total: number; max: number };
  writerDepth(): number;
  /** Envelopes the bus dropped since start. */
  busDropped(): number;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  readonly #framesIn: Tally;
  readonly #framesOut: Tally;
  readonly #errors: Tally;
  readonly connectionsOpened: Counter;
  readonly connectionsClosed: Counter<'code'>;
  readonly committed: Counter<'kind'>;
  readonly duplicates: Counter;
  readonly sendToAck: Histogram;
  readonly commitToNode: Histogram;
  readonly appendSeconds: Histogram;
  readonly appendBatch: Histogram;
  readonly checkpointSeconds: Histogram<'thread'>;
  readonly busReceived: Counter<'type'>;
  readonly gapFills: Counter;
  readonly storeCalls: Counter<'method'>;
  readonly catchUpPages: Counter;
  readonly slowConsumers: Counter<'bound'>;
  readonly admissionRefused: Counter<'reason'>;
  readonly passwordWork: Counter<'op'>;
  readonly rateLimited: Counter<'budget'>;
  readonly reorderHeld: Counter;
  readonly reorderGaveUp: Counter;
  readonly http: Counter<'method' | 'route' | 'status'>;
  readonly httpSeconds: Histogram<'method' | 'route'>;

  constructor(sources: MetricSources, labels: { node: string }) {
    const r = this.registry;
    r.setDefaultLabels(labels);
    collectDefaultMetrics({ register: r, eventLoopMonitoringPrecision: 20 });
    const registers = [r];
    this.#framesIn = new Tally({ name: 'confab_frames_in_total', help: 'WebSocket frames received, by frame type (invalid: could not be parsed or validated).', labelNames: ['type'], registers });
    this.#framesOut = new Tally({ name: 'confab_frames_out_total', help: 'WebSocket frames sent, by frame type.', labelNames: ['type'], registers });
    this.#errors = new Tally({ name: 'confab_errors_total', help: 'Errors answered to clients (WebSocket error frames and REST error bodies), by error code.', labelNames: ['code'], registers });
    this.connectionsOpened = new Counter({ name: 'confab_connections_opened_total', help: 'WebSocket connections accepted.', registers });
    this.connectionsClosed = new Counter({ name: 'confab_connections_closed_total', help: 'WebSocket connections closed, by close code.', labelNames: ['code'], registers });
    this.committed = new Counter({ name: 'confab_entries_committed_total', help: 'Log entries committed by this node (message, edit, delete).', labelNames: ['kind'], registers });
    this.duplicates = new Counter({ name: 'confab_sends_duplicate_total', help: 'Sends answered with an earlier commit of the same client id (resends).', registers });
    this.sendToAck = new Histogram({ name: 'confab_send_ack_seconds', help: 'From a send/edit/delete frame read to its ack written (WebSocket).', buckets: LATENCY_BUCKETS, registers });
    this.commitToNode = new Histogram({ name: 'confab_delivery_seconds', help: 'From an entry\'s creation on the sending node to its hand-over to this node\'s connections (commit, fan-out, bus).', buckets: LATENCY_BUCKETS, registers });
    this.appendSeconds = new Histogram({ name: 'confab_store_append_seconds', help: 'Duration of one group commit (a batch of entries, one transaction).', buckets: LATENCY_BUCKETS, registers });
    this.checkpointSeconds = new Histogram({ name: 'confab_store_checkpoint_seconds', help: 'Duration of one WAL checkpoint pass of the embedded store (SQLite): WAL pages copied into the database file, fsync included; by thread (worker: the checkpoint thread; node: the short pass on the event loop that lets the WAL start over).', labelNames: ['thread'], buckets: LATENCY_BUCKETS, registers });
    this.appendBatch = new Histogram({ name: 'confab_store_append_batch_entries', help: 'Entries per group commit.', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers });
    this.busReceived = new Counter({ name: 'confab_bus_envelopes_received_total', help: 'Envelopes this node received from the bus, by type.', labelNames: ['type'], registers });
    this.gapFills = new Counter({ name: 'confab_gap_fills_total', help: 'Live gaps a connection filled from the store (an entry arrived ahead of an earlier one that never came in time).', registers });
    this.storeCalls = new Counter({ name: 'confab_store_calls_total', help: 'Calls into the store port (each one query or transaction), by method: what the database is asked, e.g. during a reconnect storm.', labelNames: ['method'], registers });
    this.catchUpPages = new Counter({ name: 'confab_catchup_pages_total', help: 'sync.page frames written (catch-up and gap fills).', registers });
    this.http = new Counter({ name: 'confab_http_requests_total', help: 'REST requests, by method, route template and status.', labelNames: ['method', 'route', 'status'], registers });
    this.httpSeconds = new Histogram({ name: 'confab_http_request_seconds', help: 'REST request duration, by method and route template.', labelNames: ['method', 'route'], buckets: LATENCY_BUCKETS, registers });
    new Gauge({ name: 'confab_connections', help: 'Open WebSocket connections.', registers, collect() { this.set(sources.connections()); } });
    new Gauge({ name: 'confab_outbound_buffered_bytes', help: 'Bytes waiting to be written to this node\'s connections, all together.', registers, collect() { this.set(sources.outbound().total); } });
    new Gauge({ name: 'confab_outbound_buffered_bytes_max', help: 'Bytes waiting to be written to the most backed-up connection.', registers, collect() { this.set(sources.outbound().max); } });
    new Gauge({ name: 'confab_writer_queue_entries', help: 'Entries waiting for the next group commit.', registers, collect() { this.set(sources.writerDepth()); } });
    new Gauge({ name: 'confab_bus_envelopes_dropped', help: 'Envelopes the bus dropped since the node started (Redis away or too slow); only grows.', registers, collect() { this.set(sources.busDropped()); } });
    this.slowConsumers = new Counter({ name: 'confab_slow_consumers_total', help: 'Connections closed with 4104 slow_consumer, by the bound they passed: MAX_OUTBOUND_BYTES of frames waiting in the node (buffered), sent and not read for 2 s (unread), or dropped for answering no ping for the heartbeat timeout, with frames written to it that it never read (stalled: terminated without a close frame, not 4104).', labelNames: ['bound'], registers });
    this.passwordWork = new Counter({ name: 'confab_password_hashes_total', help: 'Passwords hashed with argon2id: for a registration (hash) or checked for a login (verify); each takes tens of milliseconds of a core.', labelNames: ['op'], registers });
    this.admissionRefused = new Counter({ name: 'confab_admission_refused_total', help: 'WebSocket upgrades refused before the handshake, by reason: too many connections waiting for hello on the node (pending_node) or from the address (pending_address), or too many new connections per second from the address (rate_address).', labelNames: ['reason'], registers });
    this.rateLimited = new Counter({ name: 'confab_rate_limited_total', help: 'Frames and REST requests refused with rate_limited before they ran, by budget (sends, requests, changes, password, address; unread: a WebSocket connection that has not read what was sent to it; pipelined: too many answers waiting for one HTTP connection).', labelNames: ['budget'], registers });
    new Gauge({ name: 'confab_connections_pending', help: 'WebSocket connections not yet past hello (not authenticated yet).', registers, collect() { this.set(sources.pendingConnections()); } });
    this.reorderHeld = new Counter({ name: 'confab_reorder_held_total', help: 'Entries that reached this node ahead of an earlier one of their conversation and waited for it (cluster).', registers });
    this.reorderGaveUp = new Counter({ name: 'confab_reorder_gave_up_total', help: 'Waits that ended without the earlier entry: the gap went on to the connections, which read it from the store.', registers });
  }

  frameIn(type: string): void {
    this.#framesIn.inc(type);
  }

  frameOut(type: string): void {
    this.#framesOut.inc(type);
  }

  error(code: string): void {
    this.#errors.inc(code);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * A counter with one label, for what happens once per frame: a plain number per label value,
 * handed to prom-client when Prometheus scrapes. (prom-client's own `inc` builds a key from the
 * labels on every call, even through a label child: at 10,000 frames a second that was about 7 %
 * of everything the node allocated, docs/performance.md.)
 */
class Tally {
  readonly #counts = new Map<string, number>();

  constructor(config: { name: string; help: string; labelNames: [string]; registers: Registry[] }) {
    const counts = this.#counts;
    const [label] = config.labelNames;
    new Counter({
      ...config,
      collect() {
        this.reset();
        for (const [value, n] of counts) this.inc({ [label]: value }, n);
      },
    });
  }

  inc(value: string): void {
    this.#counts.set(value, (this.#counts.get(value) ?? 0) + 1);
  }
}

/**
 * The same object, with every method call counted in `counter` by method name (the store port:
 * one call is one query or one transaction). Wrapped methods are made once per name.
 */
export function metered<T extends object>(target: T, counter: Counter<'method'>): T {
  const wrapped = new Map<string | symbol, unknown>();
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      let w = wrapped.get(prop);
      if (!w) {
        const fn = value as (...args: unknown[]) => unknown;
        const calls = counter.labels(prop);
        w = (...args: unknown[]) => {
          calls.inc();
          return fn.apply(t, args);
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}
