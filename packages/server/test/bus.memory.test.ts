// The bus contract against the in-process bus: every node of the "cluster" shares one instance.
import { MemoryBus } from '../src/adapters/memory/memory-bus.js';
import { busContract } from './bus-contract.js';

busContract('memory', () => {
  const bus = new MemoryBus();
  return Promise.resolve({ node: () => Promise.resolve(bus), close: () => bus.close() });
});
