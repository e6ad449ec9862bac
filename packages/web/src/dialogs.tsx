// Starting a 1:1, creating a group, and a group's members (add, remove, leave).
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { Store, Thread } from './store.js';
import { errorText } from './store.js';
import { Avatar } from './app.js';

function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;
  // Once per opening (not per render): focus the first field, Escape closes, focus goes back after.
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    ref.current?.querySelector<HTMLElement>('input, button')?.focus();
    const onKey = (e: KeyboardEvent) => { if (e.key === 'Escape') close.current(); };
    addEventListener('keydown', onKey);
    return () => { removeEventListener('keydown', onKey); opener?.focus(); };
  }, []);
  return (
    <div class="overlay" onClick={(e) => { if (e.target === e.currentTarget) onClose(); }}>
      <div class="dialog" role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <h2>{title}</h2>
        {children}
      </div>
    </div>
  );
}

/** Usernames from "bob, carol dave". */
function names(raw: string): string[] {
  return [...new Set(raw.split(/[\s,]+/).map((x) => x.trim().toLowerCase().replace(/^@/, '')).filter(Boolean))];
}

export function NewChatDialog({ store, onClose }: { store: Store; onClose: () => void }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    store.startDirect(input.current!.value).then((id) => { onClose(); location.hash = `#/c/${id}`; }, (err: unknown) => { setError(errorText(err)); setBusy(false); });
  };
  return (
    <Dialog title="New chat" onClose={onClose}>
      <form onSubmit={submit}>
        <label for="direct-user">Username</label>
        <input id="direct-user" ref={input} autoComplete="off" autoCapitalize="none" spellcheck={false} required placeholder="e.g. alice" />
        {error && <p class="error" role="alert">{error}</p>}
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>Cancel</button>
          <button class="primary" type="submit" disabled={busy}>Start chat</button>
        </div>
      </form>
    </Dialog>
  );
}

export function NewGroupDialog({ store, onClose }: { store: Store; onClose: () => void }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const name = useRef<HTMLInputElement>(null);
  const members = useRef<HTMLInputElement>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    setBusy(true);
    store.createGroup(name.current!.value, names(members.current!.value))
      .then((id) => { onClose(); location.hash = `#/c/${id}`; }, (err: unknown) => { setError(errorText(err)); setBusy(false); });
  };
  return (
    <Dialog title="New group" onClose={onClose}>
      <form onSubmit={submit}>
        <label for="group-name">Group name</label>
        <input id="group-name" ref={name} required maxLength={100} placeholder="e.g. Weekend trip" />
        <label for="group-members">Members</label>
        <input id="group-members" ref={members} autoComplete="off" autoCapitalize="none" spellcheck={false} placeholder="bob, carol" aria-describedby="group-members-hint" />
        <p class="hint" id="group-members-hint">Usernames, separated by commas or spaces.</p>
        {error && <p class="error" role="alert">{error}</p>}
        <div class="dialog-actions">
          <button type="button" onClick={onClose}>Cancel</button>
          <button class="primary" type="submit" disabled={busy}>Create group</button>
        </div>
      </form>
    </Dialog>
  );
}

export function GroupInfo({ store, thread, onClose }: { store: Store; thread: Thread; onClose: () => void }) {
  const s = store.state;
  const c = thread.conv;
  const members = s.members.get(c.id);
  const canManage = c.role === 'owner' || c.role === 'admin';
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => { void store.loadMembers(c.id); }, [store, c.id]);
  const run = (p: Promise<void>, after?: () => void) => {
    setBusy(true);
    setError('');
    p.then(() => { setBusy(false); after?.(); }, (err: unknown) => { setError(errorText(err)); setBusy(false); });
  };
  const add = (e: Event) => {
    e.preventDefault();
    const list = names(input.current!.value);
    if (list.length > 0) run(store.addMembers(c.id, list), () => { input.current!.value = ''; });
  };
  return (
    <aside class="group-info" aria-label="Group members">
      <header>
        <h3>Members</h3>
        <button class="icon" type="button" aria-label="Close members" onClick={onClose}>
          <svg viewBox="0 0 24 24" aria-hidden="true"><path d="M6 6l12 12M18 6L6 18" /></svg>
        </button>
      </header>
      {canManage && (
        <form class="add-member" onSubmit={add}>
          <label class="sr-only" for="add-member">Add members</label>
          <input id="add-member" ref={input} placeholder="Add by username" autoComplete="off" autoCapitalize="none" spellcheck={false} />
          <button type="submit" class="primary" disabled={busy}>Add</button>
        </form>
      )}
      {error && <p class="error small" role="alert">{error}</p>}
      {!members && <p class="muted">Loading…</p>}
      <ul class="members">
        {members?.map((m) => {
          const online = m.userId === s.me?.id || s.presence.get(m.userId)?.status === 'online';
          const removable = canManage && m.userId !== s.me?.id && m.role !== 'owner' && (c.role === 'owner' || m.role === 'member');
          return (
            <li key={m.userId} data-member={m.username}>
              <Avatar name={m.username} online={online} size="sm" />
              <span class="member-name">{m.username}{m.userId === s.me?.id ? ' (you)' : ''}</span>
              {m.role !== 'member' && <span class="role">{m.role}</span>}
              {removable && (
                <button type="button" class="link small danger" disabled={busy} aria-label={`Remove ${m.username}`} onClick={() => run(store.removeMember(c.id, m.userId))}>Remove</button>
              )}
            </li>
          );
        })}
      </ul>
      <button type="button" class="danger wide" disabled={busy} onClick={() => run(store.removeMember(c.id, s.me!.id), () => { location.hash = '#/'; })}>Leave group</button>
    </aside>
  );
}
