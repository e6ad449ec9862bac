// The node under fuzzing, in a process of its own (started by fuzz.test.ts with fork), so that
// what is measured here is the node alone: its event-loop delay, its uncaught exceptions and
// unhandled rejections, and Object.prototype. The fuzzer's generation and reply checking run in
// the test process and cannot show up as a stall of the node.
//
// Messages: the parent sends 'start' ({ limits }); this answers { url }. 'report' answers
// { maxDelayMs, faults, prototypeKeys }. 'stop' closes the node and exits.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Limits } from '@confab/protocol';
import { startNode, type TestNode } from './helpers.js';

export interface FuzzNodeReport {
  maxDelayMs: number;
  faults: string[];
  prototypeKeys: string[];
}

type Command = { type: 'start'; limits: Partial<Limits> } | { type: 'report' } | { type: 'stop' };

const faults: string[] = [];
process.on('unhandledRejection', (err) => { faults.push(`unhandled rejection: ${String(err)}`); });
process.on('uncaughtException', (err) => { faults.push(`uncaught exception: ${String(err)}`); });
const loop = monitorEventLoopDelay({ resolution: 10 });
let node: TestNode | undefined;

const send = (m: unknown) => process.send!(m);

process.on('message', (m: Command) => {
  void (async () => {
    if (m.type === 'start') {
      node = await startNode({ limits: m.limits });
      loop.enable();
      send({ url: node.url });
    } else if (m.type === 'report') {
      send({ maxDelayMs: loop.max / 1e6, faults, prototypeKeys: Object.keys(Object.prototype) } satisfies FuzzNodeReport);
    } else {
      loop.disable();
      await node?.close();
      process.exit(0);
    }
  })();
});
process.on('disconnect', () => process.exit(0));
