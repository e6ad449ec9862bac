// Authorization checks shared by every entry point: only members see or touch a conversation.
import type { ConversationId, UserId } from '@confab/protocol';
import { AppError } from '../errors.js';
import type { ConversationRecord, MemberRecord, Store } from '../ports/store.js';

export async function requireMember(store: Store, conversationId: ConversationId, userId: UserId): Promise<{ conversation: ConversationRecord; member: MemberRecord }> {
  const [conversation, member] = await Promise.all([store.conversation(conversationId), store.member(conversationId, userId)]);
  if (!conversation) throw new AppError('conversation_not_found');
  if (!member) throw new AppError('forbidden', 'You are not a member of this conversation.');
  return { conversation, member };
}

export const isAdmin = (m: MemberRecord): boolean => m.role === 'owner' || m.role === 'admin';
