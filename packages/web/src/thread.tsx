// One conversation: header (presence or members), the message list (infinite scroll upwards,
// date separators, grouped bubbles, ✓ / ✓✓ / read marks), the typing line and the composer.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Message } from '@confab/sdk';
import type { PendingSend, Receipt, Store, Thread } from './store.js';
import { errorText } from './store.js';
import { Avatar, ConnectionBanner, threadTitle } from './app.js';
import { clock, dayLabel, lastSeen, linkify, sameDay } from './format.js';
import { GroupInfo } from './dialogs.js';

/** Consecutive messages of one sender closer than this share a group. */
const GROUP_MS = 5 * 60_000;

type Status = 'pending' | 'failed' | 'sent' | 'delivered' | 'read';

interface Item {
  key: string;
  sender: string;
  senderUsername: string;
  text: string;
  createdAt: number;
  mine: boolean;
  status: Status | undefined;
  message: Message | undefined;
  pending: PendingSend | undefined;
}

function statusOf(m: Message, r: Receipt | undefined): Status {
  if (r && m.seq <= r.read) return 'read';
  if (r && m.seq <= r.delivered) return 'delivered';
  return 'sent';
}

export function ConversationView({ store, thread }: { store: Store; thread: Thread }) {
  const s = store.state;
  const c = thread.conv;
  const [info, setInfo] = useState(false);
  const [editing, setEditing] = useState<Message | undefined>();
  const title = threadTitle(thread);
  const typing = (s.typing.get(c.id) ?? []).filter((u) => u.userId !== s.me?.id);
  let subtitle: string;
  const live = s.connection === 'open';
  if (!live) {
    subtitle = c.kind === 'group' ? `${c.memberCount} members` : '';
  } else if (c.kind === 'direct') {
    const p = c.peer ? s.presence.get(c.peer.id) : undefined;
    subtitle = !p ? '' : p.status === 'online' ? 'online' : p.status === 'away' ? 'away' : lastSeen(p.lastSeen);
  } else {
    const members = s.members.get(c.id);
    const online = members?.filter((m) => m.userId !== s.me?.id && s.presence.get(m.userId)?.status === 'online').length ?? 0;
    subtitle = `${c.memberCount} members${online > 0 ? `, ${online} online` : ''}`;
  }
  const peerOnline = c.peer && live ? s.presence.get(c.peer.id)?.status === 'online' : undefined;
  return (
    <section class="thread" aria-label={`Conversation with ${title}`}>
      <header class="thread-head">
        <a class="icon back" href="#/" aria-label="Back to conversations">
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M15 5l-7 7 7 7" /></svg>
        </a>
        <Avatar name={title} online={peerOnline} />
        <div class="thread-title">
          <h2>{title}</h2>
          <span class="muted" data-testid="subtitle">{subtitle}</span>
        </div>
        {c.kind === 'group' && (
          <button class="icon" type="button" aria-label="Group members" title="Group members" aria-expanded={info} onClick={() => setInfo(!info)}>
            <svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="9" cy="8" r="3.2" /><path d="M3 19c.6-3.3 3-5 6-5s5.4 1.7 6 5" /><circle cx="17" cy="9" r="2.4" /><path d="M16.5 14c2.5 0 4 1.5 4.5 4" /></svg>
          </button>
        )}
      </header>
      <div class="banner-slot"><ConnectionBanner store={store} /></div>
      <div class="thread-body">
        <MessageList store={store} thread={thread} onEdit={setEditing} />
        {info && c.kind === 'group' && <GroupInfo store={store} thread={thread} onClose={() => setInfo(false)} />}
      </div>
      <div class="typing-line" aria-live="polite">
        {typing.length > 0 && (
          <span class="typing" data-testid="typing">
            <span class="dots" aria-hidden="true"><i /><i /><i /></span>
            {c.kind === 'direct' ? `${typing[0]!.username} is typing…` : `${typing.map((u) => u.username).join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…`}
          </span>
        )}
      </div>
      <Composer store={store} thread={thread} editing={editing} onDoneEditing={() => setEditing(undefined)} />
    </section>
  );
}

function MessageList({ store, thread, onEdit }: { store: Store; thread: Thread; onEdit: (m: Message) => void }) {
  const s = store.state;
  const c = thread.conv;
  const me = s.me?.id;
  const receipt = s.receipts.get(c.id);
  const scroller = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const anchor = useRef<{ height: number; top: number; first: number } | undefined>(undefined);
  const lastKey = useRef<string | undefined>(undefined);
  const [jump, setJump] = useState(false);

  const items: Item[] = thread.messages.map((m) => ({
    key: `s${m.seq}`, sender: m.sender, senderUsername: m.senderUsername, text: m.text, createdAt: m.createdAt, mine: m.sender === me,
    status: m.sender === me && !m.deletedAt ? statusOf(m, receipt) : undefined, message: m, pending: undefined,
  }));
  for (const p of s.pending) {
    if (p.conversationId !== c.id) continue;
    items.push({
      key: `p${p.clientId}`, sender: me ?? '', senderUsername: s.me?.username ?? '', text: p.text, createdAt: p.createdAt, mine: true,
      status: p.failed ? 'failed' : 'pending', message: undefined, pending: p,
    });
  }
  const firstSeq = thread.messages[0]?.seq ?? 0;
  const newest = items.at(-1)?.key;
  const lastMine = items.at(-1)?.mine === true;

  // Keep the view where it was when older messages come in above; follow new ones at the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const a = anchor.current;
    if (a && a.first !== firstSeq) {
      el.scrollTop = el.scrollHeight - a.height + a.top;
      anchor.current = undefined;
    } else if (atBottom.current || (newest !== lastKey.current && lastMine)) {
      // At the bottom, or you just sent something: follow the conversation down.
      el.scrollTop = el.scrollHeight;
      atBottom.current = true;
    } else if (newest !== undefined && lastKey.current !== undefined && newest !== lastKey.current && !jump) {
      setJump(true); // something new arrived below while the user reads further up
    }
    lastKey.current = newest;
    // A first page shorter than the screen: fetch more so there is something to scroll.
    if (thread.loaded && thread.hasMore && !thread.loading && el.scrollHeight <= el.clientHeight + 40) older();
  });

  const older = () => {
    const el = scroller.current;
    if (!el || thread.loading || !thread.hasMore) return;
    anchor.current = { height: el.scrollHeight, top: el.scrollTop, first: firstSeq };
    void store.loadOlder(c.id);
  };

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 60;
    if (atBottom.current && jump) setJump(false);
    if (el.scrollTop < 200 && thread.loaded) older();
  };


  const rows: preact.JSX.Element[] = [];
  let prev: Item | undefined;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    const next = items[i + 1];
    if (!prev || !sameDay(prev.createdAt, it.createdAt)) {
      rows.push(<li key={`d${it.key}`} class="day" role="separator"><span>{dayLabel(it.createdAt)}</span></li>);
      prev = undefined;
    }
    const joinsPrev = !!prev && prev.sender === it.sender && it.createdAt - prev.createdAt < GROUP_MS;
    const joinsNext = !!next && next.sender === it.sender && next.createdAt - it.createdAt < GROUP_MS && sameDay(it.createdAt, next.createdAt);
    rows.push(
      <Bubble key={it.key} store={store} item={it} group={c.kind === 'group'} first={!joinsPrev} last={!joinsNext} onEdit={onEdit} />,
    );
    prev = it;
  }

  return (
    <div class="messages" ref={scroller} onScroll={onScroll} tabIndex={0} aria-label="Messages">
      {thread.loading && <p class="muted center">Loading…</p>}
      {thread.loaded && !thread.hasMore && items.length > 0 && <p class="muted center start">This is the beginning of the conversation.</p>}
      {thread.error && <p class="error center" role="alert">{thread.error}</p>}
      {thread.loaded && items.length === 0 && <p class="muted center">No messages yet. Say hello!</p>}
      <ol class="message-list">{rows}</ol>
      {jump && (
        <button type="button" class="jump" onClick={() => { const el = scroller.current; if (el) el.scrollTop = el.scrollHeight; setJump(false); }}>
          New messages ↓
        </button>
      )}
    </div>
  );
}

const STATUS_TEXT: Record<Status, string> = { pending: 'Sending', failed: 'Not sent', sent: 'Sent', delivered: 'Delivered', read: 'Read' };

function Ticks({ status }: { status: Status }) {
  if (status === 'pending') {
    return <svg class="tick" viewBox="0 0 16 16" aria-hidden="true"><circle cx="8" cy="8" r="6" /><path d="M8 4.5V8l2.5 1.5" /></svg>;
  }
  if (status === 'failed') return <span class="tick failed" aria-hidden="true">!</span>;
  const double = status !== 'sent';
  return (
    <svg class={`tick ${status}`} viewBox="0 0 22 16" aria-hidden="true">
      <path d="M2 8.5l3.5 3.5L13 4" />
      {double && <path d="M9.5 12L17 4" />}
    </svg>
  );
}

function Bubble({ store, item, group, first, last, onEdit }: { store: Store; item: Item; group: boolean; first: boolean; last: boolean; onEdit: (m: Message) => void }) {
  const m = item.message;
  const deleted = !!m?.deletedAt;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const remove = () => {
    if (!m) return;
    setBusy(true);
    store.remove(m.conversationId, m.messageId).catch((err: unknown) => setError(errorText(err))).finally(() => setBusy(false));
  };
  const cls = ['msg', item.mine ? 'mine' : 'theirs', first ? 'first' : '', last ? 'last' : '', deleted ? 'deleted' : ''].filter(Boolean).join(' ');
  return (
    <li class={cls} data-seq={m?.seq} data-status={item.status} data-sender={item.senderUsername}>
      {group && !item.mine && first && <span class="sender">{item.senderUsername}</span>}
      <div class="bubble-row">
        <div class="bubble">
          {deleted ? <span class="text tomb">This message was deleted</span> : <span class="text">{linkify(item.text).map((p, i) => ('href' in p
            ? <a key={i} href={p.href} target="_blank" rel="noopener noreferrer nofollow ugc">{p.text}</a>
            : p.text))}</span>}
          <span class="meta">
            {m?.editedAt && !deleted && <span class="edited">edited</span>}
            <time dateTime={new Date(item.createdAt).toISOString()}>{clock(item.createdAt)}</time>
            {item.status && <span class="status" title={STATUS_TEXT[item.status]} aria-label={STATUS_TEXT[item.status]}><Ticks status={item.status} /></span>}
          </span>
        </div>
        {item.mine && m && !deleted && (
          <span class="actions">
            <button type="button" class="icon sm" aria-label="Edit message" title="Edit" disabled={busy} onClick={() => onEdit(m)}>
              <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 20h4L19 9l-4-4L4 16z" /><path d="M13.5 6.5l4 4" /></svg>
            </button>
            <button type="button" class="icon sm" aria-label="Delete message" title="Delete" disabled={busy} onClick={remove}>
              <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M5 7h14M10 7V4.5h4V7M7 7l1 13h8l1-13" /></svg>
            </button>
          </span>
        )}
        {item.pending?.failed && (
          <button type="button" class="link small" onClick={() => store.discard(item.pending!.clientId)}>Discard</button>
        )}
      </div>
      {(error || item.pending?.failed) && <span class="error small" role="alert">{error || item.pending?.failed}</span>}
    </li>
  );
}

function Composer({ store, thread, editing, onDoneEditing }: { store: Store; thread: Thread; editing: Message | undefined; onDoneEditing: () => void }) {
  const id = thread.conv.id;
  const [text, setText] = useState('');
  const [error, setError] = useState('');
  const area = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (editing) { setText(editing.text); area.current?.focus(); } else setText('');
  }, [editing]);
  useEffect(() => { area.current?.focus(); }, [id]);
  // Grow with the text, up to a limit (then it scrolls).
  useLayoutEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }, [text]);

  const submit = () => {
    const value = text;
    if (value.trim() === '') return;
    setError('');
    if (editing) {
      const m = editing;
      onDoneEditing();
      if (value !== m.text) store.edit(id, m.messageId, value).catch((err: unknown) => setError(errorText(err)));
      return;
    }
    store.send(id, value);
    setText('');
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && editing) {
      e.preventDefault();
      onDoneEditing();
    }
  };

  const onInput = (e: Event) => {
    const v = (e.currentTarget as HTMLTextAreaElement).value;
    setText(v);
    if (!editing) store.typing(id, v.trim() !== '');
  };

  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); submit(); }}>
      {editing && (
        <div class="editing">
          <span>Editing message</span>
          <button type="button" class="link" onClick={onDoneEditing}>Cancel</button>
        </div>
      )}
      {error && <p class="error small" role="alert">{error}</p>}
      <div class="composer-row">
        <label class="sr-only" for="composer">Message</label>
        <textarea id="composer" ref={area} rows={1} value={text} placeholder="Message" onInput={onInput} onKeyDown={onKeyDown}
          onBlur={() => store.typing(id, false)} aria-describedby="composer-hint" />
        <span id="composer-hint" class="sr-only">Enter sends, Shift+Enter starts a new line.</span>
        <button class="send" type="submit" aria-label={editing ? 'Save edit' : 'Send'} disabled={text.trim() === ''}>
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 12l16-8-6 16-2.5-6.5z" /></svg>
        </button>
      </div>
    </form>
  );
}
