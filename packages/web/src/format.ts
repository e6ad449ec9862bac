// Dates, names and links for display. Nothing here produces HTML: links come back as parts
// that the components render as elements with text children.

const time = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekday = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const shortDate = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const longDate = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });

const DAY = 86_400_000;

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

/** Clock time of a message. */
export function clock(ms: number): string {
  return time.format(ms);
}

/** Time in the conversation list: the clock today, the weekday this week, else the date. */
export function listTime(ms: number, now = Date.now()): string {
  const days = (startOfDay(now) - startOfDay(ms)) / DAY;
  if (days < 1) return time.format(ms);
  if (days < 2) return 'Yesterday';
  if (days < 7) return weekday.format(ms);
  return shortDate.format(ms);
}

/** Label of a date separator. */
export function dayLabel(ms: number, now = Date.now()): string {
  const days = (startOfDay(now) - startOfDay(ms)) / DAY;
  if (days < 1) return 'Today';
  if (days < 2) return 'Yesterday';
  return longDate.format(ms);
}

/** "last seen" wording. */
export function lastSeen(ms: number | null, now = Date.now()): string {
  if (ms === null) return 'offline';
  const mins = Math.round((now - ms) / 60_000);
  if (mins < 1) return 'last seen just now';
  if (mins < 60) return `last seen ${mins} min ago`;
  return `last seen ${sameDay(ms, now) ? 'today' : listTime(ms, now)} at ${time.format(ms)}`;
}

/** Initials: the first letters of the first two words, or of the one word. */
export function initials(name: string): string {
  const parts = name.split(/[\s._-]+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0]![0]! + parts[1]![0]! : name.slice(0, 1);
  return s.toUpperCase();
}

/** A stable hue for a name (avatar colours). */
export function hue(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) % 360;
  return h;
}

export type Part = { text: string } | { text: string; href: string };

const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/**
 * Splits text into plain parts and links. Only http(s) URLs become links (never javascript:,
 * data: and the like); trailing punctuation stays text.
 */
export function linkify(text: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let raw = m[0];
    while (/[.,;:!?)\]}]$/.test(raw)) raw = raw.slice(0, -1);
    const start = m.index;
    let href: string | undefined;
    try {
      const u = new URL(raw);
      if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
    } catch {
      href = undefined;
    }
    if (!href) continue;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: raw, href });
    last = start + raw.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}
