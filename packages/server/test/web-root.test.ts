// WEB_ROOT: the node serves a static web client at `/` next to the API, without shadowing any
// API route or the JSON 404s, with a strict CSP on the page and long caching only for hashed assets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { loadConfig } from '../src/index.js';
import { startNode, tempDir } from './helpers.js';

function fakeBuild(): string {
  const dir = tempDir('confab-web-');
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title><script type="module" src="/assets/app-abc123.js"></script>');
  writeFileSync(join(dir, 'assets', 'app-abc123.js'), 'console.log(1)');
  writeFileSync(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  return dir;
}

test('WEB_ROOT defaults to the web package build; none or empty disables it', () => {
  assert.ok(loadConfig([], {}).webRoot.endsWith(join('packages', 'web', 'dist')), loadConfig([], {}).webRoot);
  assert.equal(loadConfig([], { WEB_ROOT: 'none' }).webRoot, '');
  assert.equal(loadConfig([], { WEB_ROOT: '' }).webRoot, '');
  assert.equal(loadConfig(['--web-root', `${sep}srv${sep}confab`], {}).webRoot, `${sep}srv${sep}confab`);
});

test('the web root is served at / with a CSP; hashed assets are cached, the page is not; API paths keep JSON 404s', async (t) => {
  const dir = fakeBuild();
  const node = await startNode({ config: { webRoot: dir } });
  t.after(async () => { await node.close(); rmSync(dir, { recursive: true, force: true }); });

  const page = await fetch(`${node.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>t<\/title>/);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(page.headers.get('cache-control'), 'no-store');
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/, 'no unsafe-inline or eval for scripts');
  assert.match(csp, /frame-ancestors 'none'/);

  const asset = await fetch(`${node.url}/assets/app-abc123.js`);
  assert.equal(asset.status, 200);
  assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.equal(asset.headers.get('content-security-policy'), null);
  assert.equal((await fetch(`${node.url}/favicon.svg`)).headers.get('cache-control'), 'no-store');

  for (const [method, path] of [['GET', '/v1/nope'], ['GET', '/assets/other.js'], ['GET', '/some/page'], ['POST', '/'], ['GET', '/../package.json']] as const) {
    const r = await fetch(node.url + path, { method });
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'route_not_found', `${method} ${path}`);
  }
  assert.deepEqual(await (await fetch(`${node.url}/healthz`)).json(), { status: 'ok' });
  assert.deepEqual(await (await fetch(`${node.url}/readyz`)).json(), { status: 'ready' });
  const me = await fetch(`${node.url}/v1/me`);
  assert.equal(me.status, 401);
});

test('no web client: WEB_ROOT=none, or a directory without index.html, leaves / to the JSON 404', async (t) => {
  const empty = tempDir('confab-web-empty-');
  for (const webRoot of ['', empty]) {
    const node = await startNode({ config: { webRoot } });
    t.after(() => node.close());
    const r = await fetch(`${node.url}/`);
    assert.equal(r.status, 404, JSON.stringify(webRoot));
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'route_not_found');
  }
  rmSync(empty, { recursive: true, force: true });
});
