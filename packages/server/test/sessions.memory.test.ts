// The sessions contract against the in-process registry: every node shares one instance.
import { MemorySessions } from '../src/adapters/memory/memory-sessions.js';
import { sessionsContract } from './sessions-contract.js';

sessionsContract('memory', () => {
  const sessions = new MemorySessions();
  return Promise.resolve({ node: () => Promise.resolve(sessions), close: () => sessions.close() });
}, { liveness: false });
