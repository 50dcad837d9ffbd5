/**
 * Parse-tree node type → statement kind (the words rules use in `match: {statement: …}`).
 * Kept apart from the walker so the vocabulary is visible in one place.
 */

/** Every kind a statement can have; `other` for anything not listed. */
export const SQL_KINDS = [
  'select',
  'insert',
  'update',
  'delete',
  'merge',
  'copy',
  'create',
  'alter',
  'drop',
  'truncate',
  'grant',
  'revoke',
  'comment',
  'set',
  'show',
  'reset',
  'begin',
  'commit',
  'rollback',
  'savepoint',
  'prepare',
  'execute',
  'deallocate',
  'explain',
  'call',
  'do',
  'listen',
  'notify',
  'unlisten',
  'vacuum',
  'analyze',
  'lock',
  'discard',
  'refresh',
  'cluster',
  'reindex',
  'other',
] as const;

/** Nested statements of these kinds only read, so they are not added to `kinds`. */
export const NESTED_IGNORED_KINDS: ReadonlySet<string> = new Set(['select']);

const FIXED: Record<string, string> = {
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  CopyStmt: 'copy',
  CreateTableAsStmt: 'create',
  IndexStmt: 'create',
  ViewStmt: 'create',
  DefineStmt: 'create',
  RuleStmt: 'create',
  CompositeTypeStmt: 'create',
  CreatedbStmt: 'create',
  RenameStmt: 'alter',
  AlterdbStmt: 'alter',
  TruncateStmt: 'truncate',
  CommentStmt: 'comment',
  VariableShowStmt: 'show',
  PrepareStmt: 'prepare',
  ExecuteStmt: 'execute',
  DeallocateStmt: 'deallocate',
  ExplainStmt: 'explain',
  CallStmt: 'call',
  DoStmt: 'do',
  ListenStmt: 'listen',
  NotifyStmt: 'notify',
  UnlistenStmt: 'unlisten',
  LockStmt: 'lock',
  DiscardStmt: 'discard',
  RefreshMatViewStmt: 'refresh',
  ClusterStmt: 'cluster',
  ReindexStmt: 'reindex',
  DropdbStmt: 'drop',
};

const TRANSACTION: Record<string, string> = {
  TRANS_STMT_BEGIN: 'begin',
  TRANS_STMT_START: 'begin',
  TRANS_STMT_COMMIT: 'commit',
  TRANS_STMT_COMMIT_PREPARED: 'commit',
  TRANS_STMT_PREPARE: 'commit', // PREPARE TRANSACTION: first phase of a commit
  TRANS_STMT_ROLLBACK: 'rollback',
  TRANS_STMT_ROLLBACK_TO: 'rollback',
  TRANS_STMT_ROLLBACK_PREPARED: 'rollback',
  TRANS_STMT_SAVEPOINT: 'savepoint',
  TRANS_STMT_RELEASE: 'savepoint',
};

/** Kind of one statement node (`type` is its key in the tree, `body` its value). */
export function kindOfNode(type: string, body: Record<string, unknown>): string {
  const fixed = FIXED[type];
  if (fixed) return fixed;
  switch (type) {
    case 'SelectStmt':
      // SELECT … INTO creates a table: classed as `create` so an `allow select` cannot pass it.
      return body.intoClause ? 'create' : 'select';
    case 'GrantStmt':
    case 'GrantRoleStmt':
      return body.is_grant ? 'grant' : 'revoke';
    case 'VariableSetStmt':
      return body.kind === 'VAR_RESET' || body.kind === 'VAR_RESET_ALL' ? 'reset' : 'set';
    case 'TransactionStmt':
      return TRANSACTION[body.kind as string] ?? 'other';
    case 'VacuumStmt':
      return body.is_vacuumcmd ? 'vacuum' : 'analyze';
  }
  if (type.startsWith('Create')) return 'create';
  if (type.startsWith('Alter')) return 'alter';
  if (type.startsWith('Drop')) return 'drop';
  return 'other';
}
