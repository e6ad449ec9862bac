#!/usr/bin/env node
// The `confab` command. The TypeScript sources are compiled by `npm install` (prepare).
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    console.error(`confab: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
