// The presence directory contract against the in-process directory (one node).
import { MemoryPresenceDirectory } from '../src/adapters/memory/memory-presence.js';
import { presenceContract } from './presence-contract.js';

presenceContract('memory', () => {
  const d = new MemoryPresenceDirectory();
  return Promise.resolve({ node: () => Promise.resolve(d), close: () => d.close() });
}, { multiNode: false });
