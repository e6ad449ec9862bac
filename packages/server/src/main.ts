// Runs one node until SIGINT/SIGTERM (what `confab serve` and `npm start` do).
import { build, type ConfabNode } from './app.js';
import { loadConfig, type Config } from './config.js';

export async function runNode(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Promise<ConfabNode> {
  const config = loadConfig(argv, env, overrides);
  const node = await build(config);
  await node.listen();
  const stop = (signal: string) => {
    node.log.info({ signal, deadlineMs: config.shutdownTimeoutMs }, 'draining');
    const deadline = setTimeout(() => {
      node.log.error({ deadlineMs: config.shutdownTimeoutMs }, 'drain did not finish in time: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    node.close().then(() => {
      node.log.info('drained');
      process.exit(0);
    }, (err: unknown) => {
      node.log.error({ err }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return node;
}
