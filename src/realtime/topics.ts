/** Every pub/sub channel name, in one place. */
export const Topic = {
  /** Changes of one context: a new state, or its deletion (streams then complete). */
  context: (contextId: string) => `context:${contextId}`,
  /** Each history entry of one context, whole, as it is committed. */
  history: (contextId: string) => `history:${contextId}`,
  /** Account changes that end a user's live streams on every replica. */
  user: (userId: string) => `user:${userId}`,
  /** Any change of a row that replicas keep copies of (`{ id }`): each forgets its copy. */
  rowChanged: (table: 'users' | 'models') => `changed:${table}`,
} as const;

/** A stored context row in transit: Buffers as base64, dates as ISO strings. */
export type ContextEvent =
  | { readonly type: 'updated'; readonly row: SerializedContextRow }
  | { readonly type: 'deleted'; readonly contextId: string };

export type SerializedContextRow = Record<string, string | number | null>;

/** Why a user's open streams must end or be re-checked. */
export type UserEvent = {
  readonly type: 'disabled' | 'erased' | 'role-changed';
  readonly userId: string;
};
