// Messages: send, edit and delete become entries of the conversation's log, committed by
// the group-commit writer; history reads pages of that log.
import { utf8Length, type ConversationId, type Message, type MessageId, type UserId } from '@confab/protocol';
import { AppError } from '../errors.js';
import { newMessageId } from '../ids.js';
import type { AppendRequest, AppendResult, Store } from '../ports/store.js';
import { isAdmin, requireMember } from './access.js';
import { fitting } from './pages.js';
import type { UserBudgets } from './user-limits.js';
import type { Writer } from './writer.js';

export interface Committed {
  message: Message;
  duplicate: boolean;
}

export interface HistoryQuery {
  before?: number | undefined;
  after?: number | undefined;
  limit?: number | undefined;
}

export class MessageService {
  constructor(
    private readonly store: Store,
    private readonly writer: Writer,
    private readonly limits: { maxMessageBytes: number; maxPageSize: number; maxPageBytes: number },
    /** Per-user budgets; sends are charged here, so REST and every device count together. */
    private readonly budgets: UserBudgets,
    private readonly now: () => number = Date.now,
  ) {}

  send(me: UserId, conversationId: ConversationId, clientId: string, text: string): Promise<Committed> {
    this.#checkText(text);
    this.budgets.charge('sends', me, 1);
    return this.#append({ conversationId, kind: 'message', messageId: newMessageId(), senderId: me, clientId, text, createdAt: this.now() });
  }

  async edit(me: UserId, conversationId: ConversationId, messageId: MessageId, clientId: string, text: string): Promise<Committed> {
    this.#checkText(text);
    this.budgets.charge('sends', me, 1);
    await requireMember(this.store, conversationId, me);
    const target = await this.#target(conversationId, messageId);
    if (target.sender !== me) throw new AppError('forbidden', 'You can only edit your own messages.');
    return this.#append({ conversationId, kind: 'edit', messageId: newMessageId(), senderId: me, clientId, text, createdAt: this.now(), targetId: messageId });
  }

  async delete(me: UserId, conversationId: ConversationId, messageId: MessageId, clientId: string): Promise<Committed> {
    this.budgets.charge('sends', me, 1);
    const { conversation, member } = await requireMember(this.store, conversationId, me);
    const target = await this.#target(conversationId, messageId);
    const moderator = conversation.kind === 'group' && isAdmin(member);
    if (target.sender !== me && !moderator) throw new AppError('forbidden', 'You can only delete your own messages.');
    return this.#append({ conversationId, kind: 'delete', messageId: newMessageId(), senderId: me, clientId, text: '', createdAt: this.now(), targetId: messageId });
  }

  /**
   * A page of the log, always oldest first. `after` pages forward; otherwise backward from
   * `before` (default: the end). At most `limit` (capped at maxPageSize) entries and about
   * maxPageBytes of them; `hasMore` says that the next page in that direction has some.
   */
  async history(me: UserId, conversationId: ConversationId, q: HistoryQuery): Promise<{ messages: Message[]; hasMore: boolean }> {
    await requireMember(this.store, conversationId, me);
    const limit = Math.min(q.limit ?? this.limits.maxPageSize, this.limits.maxPageSize);
    if (q.after !== undefined) {
      const rows = await this.store.readAfter(conversationId, q.after, limit + 1);
      const inRange = q.before === undefined ? rows : rows.filter((m) => m.seq < q.before!);
      const page = inRange.slice(0, limit);
      const n = fitting(page, this.limits.maxPageBytes, 'start');
      return { messages: page.slice(0, n), hasMore: inRange.length > n };
    }
    const rows = await this.store.readBefore(conversationId, q.before ?? Number.MAX_SAFE_INTEGER, limit + 1);
    const page = rows.slice(Math.max(0, rows.length - limit));
    const n = fitting(page, this.limits.maxPageBytes, 'end');
    return { messages: page.slice(page.length - n), hasMore: rows.length > n };
  }

  #checkText(text: string): void {
    const bytes = utf8Length(text);
    if (bytes > this.limits.maxMessageBytes) throw new AppError('message_too_large', `The text is ${bytes} bytes; the limit is ${this.limits.maxMessageBytes}.`);
  }

  async #target(conversationId: ConversationId, messageId: MessageId): Promise<Message> {
    const target = await this.store.message(conversationId, messageId);
    if (!target || target.kind !== 'message') throw new AppError('message_not_found');
    return target;
  }

  async #append(req: AppendRequest): Promise<Committed> {
    const r: AppendResult = await this.writer.append(req);
    if (r.ok) return { message: r.message, duplicate: r.duplicate };
    switch (r.reason) {
      case 'not_member':
        return requireMember(this.store, req.conversationId, req.senderId).then(() => { throw new AppError('forbidden'); });
      case 'message_not_found': throw new AppError('message_not_found');
      case 'message_deleted': throw new AppError('message_deleted');
      case 'client_id_reused': throw new AppError('client_id_reused');
    }
  }
}
