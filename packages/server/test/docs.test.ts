// Declare once, derive the rest: the generated docs match the schemas, every example is
// valid, and every error code and close code is documented.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CLIENT_FRAME_DOCS, CLOSE_CODES, ERROR_CODES, SERVER_FRAME_DOCS, CLIENT_FRAME_TYPES, ServerFrame } from '@confab/protocol';
import { PROTOCOL_MD, README_MD, renderProtocol, renderReadme } from '../../../scripts/docs.js';

test('docs/protocol.md is up to date (run `npm run docs`)', () => {
  assert.equal(readFileSync(PROTOCOL_MD, 'utf8'), renderProtocol());
});

test('the README configuration table is up to date (run `npm run docs`)', () => {
  const readme = readFileSync(README_MD, 'utf8');
  assert.equal(readme, renderReadme(readme));
});

test('every frame type is documented with an example that its schema accepts', () => {
  assert.deepEqual(Object.keys(CLIENT_FRAME_DOCS).sort(), [...CLIENT_FRAME_TYPES].sort());
  const serverTypes = ServerFrame.options.map((o) => o.shape.type.value).sort();
  assert.deepEqual(Object.keys(SERVER_FRAME_DOCS).sort(), serverTypes);
  for (const [name, d] of [...Object.entries(CLIENT_FRAME_DOCS), ...Object.entries(SERVER_FRAME_DOCS)]) {
    const r = d.schema.safeParse(d.example);
    assert.ok(r.success, `example of ${name}: ${r.success ? '' : r.error.message}`);
  }
});

test('every error and close code is in the docs, and the docs list no other', () => {
  const md = readFileSync(PROTOCOL_MD, 'utf8');
  const documented = [...md.matchAll(/^\| `([a-z0-9_]+)` \| \d{3} \|/gm)].map((m) => m[1]);
  assert.deepEqual(documented.sort(), Object.keys(ERROR_CODES).sort());
  const closes = [...md.matchAll(/^\| (\d{4}) \| `([a-z_]+)` \|/gm)].map((m) => m[2]);
  assert.deepEqual(closes.sort(), Object.keys(CLOSE_CODES).sort());
  const codes = Object.values(CLOSE_CODES).map((c) => c.code);
  assert.equal(new Set(codes).size, codes.length, 'close codes are unique');
});
