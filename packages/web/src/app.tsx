// The shell: sign-in, the conversation list, the connection banner and the hash routes
// (`#/` the list, `#/c/<id>` a conversation). Hash routing keeps every URL of the app on the
// one page the node serves at `/`.
import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import type { Store, Thread } from './store.js';
import { errorText, sortedThreads } from './store.js';
import { hue, initials, listTime } from './format.js';
import { ConversationView } from './thread.js';
import { NewChatDialog, NewGroupDialog } from './dialogs.js';

export function useStore(store: Store): void {
  const [, force] = useReducer((n: number, _: undefined) => n + 1, 0);
  useEffect(() => {
    const off = store.subscribe(() => force(undefined));
    force(undefined); // whatever changed between the render and this subscription
    return off;
  }, [store]);
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

export function App({ store }: { store: Store }) {
  useStore(store);
  const hash = useHash();
  const s = store.state;
  const match = /^#\/c\/([0-9a-f-]{36})$/.exec(hash);
  const activeId = match?.[1] && s.threads.has(match[1]) ? match[1] : undefined;
  useEffect(() => store.open(activeId), [store, activeId, s.phase]);
  let unread = 0;
  for (const t of s.threads.values()) if (t.conv.id !== activeId) unread += t.conv.unread;
  useEffect(() => { document.title = unread > 0 ? `(${unread}) Confab` : 'Confab'; }, [unread]);

  if (s.phase === 'starting') return <div class="splash" aria-busy="true">Confab</div>;
  if (s.phase === 'signedOut') return <SignIn store={store} />;
  const active = activeId ? s.threads.get(activeId) : undefined;
  return (
    <div class={`shell ${active ? 'has-active' : ''}`}>
      <Sidebar store={store} activeId={activeId} />
      <main class="pane" aria-label="Conversation">
        {active ? <ConversationView key={active.conv.id} store={store} thread={active} /> : <Empty />}
      </main>
    </div>
  );
}

function Empty() {
  return (
    <div class="empty">
      <div class="empty-art" aria-hidden="true" />
      <p>Pick a conversation, or start a new one.</p>
    </div>
  );
}

export function ConnectionBanner({ store }: { store: Store }) {
  const s = store.state;
  const queued = s.pending.filter((p) => !p.failed).length;
  const waiting = queued > 0 ? ` ${queued} message${queued === 1 ? '' : 's'} waiting to send.` : '';
  if (s.offline) return <div class="banner offline" role="status">You are offline. Messages are kept and sent when you are back.{waiting}</div>;
  if (s.connection === 'reconnecting') return <div class="banner reconnecting" role="status">Reconnecting…{waiting}</div>;
  if (s.connection === 'closed') return <div class="banner offline" role="status">Disconnected. Reload the page to reconnect.</div>;
  return null;
}

function SignIn({ store }: { store: Store }) {
  const [mode, setMode] = useState<'in' | 'up'>('in');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const user = useRef<HTMLInputElement>(null);
  const pass = useRef<HTMLInputElement>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    store.signIn(user.current!.value.trim().toLowerCase(), pass.current!.value, mode === 'up')
      .catch((err: unknown) => { setError(errorText(err)); setBusy(false); });
  };
  return (
    <div class="auth">
      <form class="auth-card" onSubmit={submit} aria-labelledby="auth-title">
        <div class="brand"><span class="logo" aria-hidden="true" />Confab</div>
        <h1 id="auth-title">{mode === 'in' ? 'Sign in' : 'Create your account'}</h1>
        <label for="username">Username</label>
        <input id="username" ref={user} name="username" autoComplete="username" autoCapitalize="none" spellcheck={false} required minLength={3} maxLength={32} pattern="[A-Za-z0-9_][A-Za-z0-9_.\-]*" />
        <label for="password">Password</label>
        <input id="password" ref={pass} name="password" type="password" autoComplete={mode === 'in' ? 'current-password' : 'new-password'} required minLength={mode === 'up' ? 8 : 1} />
        {mode === 'up' && <p class="hint">At least 8 characters.</p>}
        {error && <p class="error" role="alert">{error}</p>}
        <button class="primary" type="submit" disabled={busy}>{mode === 'in' ? 'Sign in' : 'Sign up'}</button>
        <p class="switch">
          {mode === 'in' ? 'New here? ' : 'Have an account? '}
          <button type="button" class="link" onClick={() => { setMode(mode === 'in' ? 'up' : 'in'); setError(''); }}>
            {mode === 'in' ? 'Create an account' : 'Sign in'}
          </button>
        </p>
      </form>
    </div>
  );
}

export function Avatar({ name, online, size = 'md' }: { name: string; online?: boolean | undefined; size?: 'sm' | 'md' }) {
  return (
    <span class={`avatar ${size} h${Math.floor(hue(name) / 30)}`} aria-hidden="true">
      {initials(name)}
      {online !== undefined && <span class={`dot ${online ? 'on' : ''}`} />}
    </span>
  );
}

export function threadTitle(t: Thread): string {
  return t.conv.kind === 'direct' ? (t.conv.peer?.username ?? 'Direct chat') : (t.conv.name ?? 'Group');
}

/** The conversation list has rendered with data once: a mark the tests read as time to first render. */
let listMarked = false;

function Sidebar({ store, activeId }: { store: Store; activeId: string | undefined }) {
  const s = store.state;
  const [dialog, setDialog] = useState<'chat' | 'group' | undefined>();
  const threads = sortedThreads(s);
  useEffect(() => {
    if (s.listLoaded && !listMarked) {
      listMarked = true;
      requestAnimationFrame(() => performance.mark('confab:list-rendered'));
    }
  }, [s.listLoaded]);
  return (
    <nav class="sidebar" aria-label="Conversations">
      <header class="side-head">
        <Avatar name={s.me?.username ?? '?'} />
        <div class="me">
          <strong>{s.me?.username}</strong>
          <span class="muted">{s.connection === 'open' ? 'online' : s.offline ? 'offline' : 'connecting…'}</span>
        </div>
        <button class="icon" type="button" aria-label="New chat" title="New chat" onClick={() => setDialog('chat')}>
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 5.5A2.5 2.5 0 0 1 6.5 3h11A2.5 2.5 0 0 1 20 5.5v8a2.5 2.5 0 0 1-2.5 2.5H10l-4.5 4v-4A2.5 2.5 0 0 1 4 13.5z" /><path d="M12 6.5v6M9 9.5h6" /></svg>
        </button>
        <button class="icon" type="button" aria-label="New group" title="New group" onClick={() => setDialog('group')}>
          <svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="9" cy="8" r="3.2" /><path d="M3 19c.6-3.3 3-5 6-5s5.4 1.7 6 5" /><path d="M18 8v6M15 11h6" /></svg>
        </button>
        <button class="icon" type="button" aria-label="Sign out" title="Sign out" onClick={() => void store.signOut()}>
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M14 4h3.5A2.5 2.5 0 0 1 20 6.5v11a2.5 2.5 0 0 1-2.5 2.5H14" /><path d="M10 8l-4 4 4 4M6 12h9" /></svg>
        </button>
      </header>
      <ConnectionBanner store={store} />
      {s.listError && <p class="error pad" role="alert">{s.listError}</p>}
      {!s.listLoaded && !s.listError && <p class="muted pad">Loading conversations…</p>}
      {s.listLoaded && threads.length === 0 && (
        <div class="pad muted first-steps">
          <p>No conversations yet.</p>
          <button class="primary" type="button" onClick={() => setDialog('chat')}>Start a chat</button>
        </div>
      )}
      <ul class="conv-list" aria-label="Conversation list">
        {threads.map((t) => <ConversationRow key={t.conv.id} store={store} thread={t} active={t.conv.id === activeId} />)}
      </ul>
      {dialog === 'chat' && <NewChatDialog store={store} onClose={() => setDialog(undefined)} />}
      {dialog === 'group' && <NewGroupDialog store={store} onClose={() => setDialog(undefined)} />}
    </nav>
  );
}

function ConversationRow({ store, thread, active }: { store: Store; thread: Thread; active: boolean }) {
  const s = store.state;
  const c = thread.conv;
  const title = threadTitle(thread);
  const typing = s.typing.get(c.id) ?? [];
  const last = c.lastMessage;
  const peerOnline = c.peer && s.connection === 'open' ? s.presence.get(c.peer.id)?.status === 'online' : undefined;
  let preview = 'No messages yet';
  if (typing.length > 0) preview = c.kind === 'direct' ? 'typing…' : `${typing[0]!.username} is typing…`;
  else if (last) {
    const who = last.sender === s.me?.id ? 'You: ' : c.kind === 'group' ? `${last.senderUsername}: ` : '';
    preview = who + (last.deletedAt ? 'Message deleted' : last.text.replace(/\s+/g, ' '));
  }
  const unread = active ? 0 : c.unread;
  return (
    <li>
      <a class={`conv ${active ? 'active' : ''} ${unread > 0 ? 'unread' : ''}`} href={`#/c/${c.id}`} aria-current={active ? 'page' : undefined} data-conversation={c.id}>
        <Avatar name={title} online={peerOnline} />
        <span class="conv-main">
          <span class="conv-top">
            <span class="conv-title">{title}</span>
            {last && <time class="conv-time" dateTime={new Date(last.createdAt).toISOString()}>{listTime(last.createdAt)}</time>}
          </span>
          <span class="conv-bottom">
            <span class={`conv-preview ${typing.length > 0 ? 'typing' : ''}`}>{preview}</span>
            {unread > 0 && <span class="badge" aria-label={`${unread} unread`}>{unread > 99 ? '99+' : unread}</span>}
          </span>
        </span>
      </a>
    </li>
  );
}
