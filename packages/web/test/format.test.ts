// The web client's display helpers, without a browser: links, date separators and list times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dayLabel, initials, lastSeen, linkify, listTime, sameDay } from '../src/format.js';

test('linkify: only http(s) URLs become links; the text is kept exactly', () => {
  const cases: [string, string[]][] = [
    ['see https://example.com/a?b=1, ok', ['https://example.com/a?b=1']],
    ['(http://example.org/x).', ['http://example.org/x']],
    ['javascript:alert(1) data:text/html,<b>x</b> ftp://example.com file:///etc/passwd', []],
    ['<a href="https://evil.example/">x</a>', ['https://evil.example/']],
    ['https://example.com/<img src=x onerror=alert(1)>', ['https://example.com/']],
    ['no links here', []],
  ];
  for (const [text, links] of cases) {
    const parts = linkify(text);
    assert.equal(parts.map((p) => p.text).join(''), text, `nothing lost or added: ${text}`);
    assert.deepEqual(parts.flatMap((p) => ('href' in p ? [p.href] : [])), links, text);
  }
});

test('date separators and list times: today, yesterday, this week, older', () => {
  const now = new Date(2026, 10, 22, 15, 30).getTime();
  const today = new Date(2026, 10, 22, 9, 5).getTime();
  const yesterday = new Date(2026, 10, 21, 23, 59).getTime();
  const monday = new Date(2026, 10, 17, 12, 0).getTime();
  const old = new Date(2026, 0, 3, 12, 0).getTime();
  assert.equal(dayLabel(today, now), 'Today');
  assert.equal(dayLabel(yesterday, now), 'Yesterday');
  assert.match(dayLabel(old, now), /2026/);
  assert.ok(sameDay(today, now) && !sameDay(yesterday, now));
  assert.match(listTime(today, now), /9/);
  assert.equal(listTime(yesterday, now), 'Yesterday');
  assert.equal(listTime(monday, now), new Intl.DateTimeFormat(undefined, { weekday: 'short' }).format(monday));
  assert.match(listTime(old, now), /3/);
  assert.equal(lastSeen(null, now), 'offline');
  assert.equal(lastSeen(now - 20_000, now), 'last seen just now');
  assert.equal(lastSeen(now - 5 * 60_000, now), 'last seen 5 min ago');
  assert.match(lastSeen(yesterday, now), /^last seen Yesterday at /);
});

test('initials', () => {
  assert.equal(initials('alice'), 'A');
  assert.equal(initials('Weekend trip'), 'WT');
  assert.equal(initials('mary_jane.w'), 'MJ');
});
