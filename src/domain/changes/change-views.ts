import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import type { Principal } from '../principal.ts';
import { NotFoundError } from '../../errors.ts';
import { decodePageCursor, encodePageCursor } from '../page-cursor.ts';

export interface ChangeView {
  id: string;
  kind: string;
  status: string;
  org: string | null;
  instanceId: string | null;
  mergePolicy: string;
  requestedBy: string;
  payload: unknown;
  batchId: string | null;
  branch: string | null;
  pullRequestNumber: number | null;
  pullRequestUrl: string | null;
  commitSha: string | null;
  mergeCommitSha: string | null;
  files: { path: string; action: 'write' | 'delete' }[];
  attempts: number;
  lastError: string | null;
  /** The later request that replaced it, who cancelled it, and the failed change it retries. */
  supersededBy: string | null;
  cancelledBy: string | null;
  retryOf: string | null;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string;
  kind: string;
  status: string;
  org: string | null;
  instance_id: string | null;
  merge_policy: string;
  requested_by: string;
  payload: unknown;
  batch_id: string | null;
  branch: string | null;
  pull_request_number: number | null;
  pull_request_url: string | null;
  commit_sha: string | null;
  merge_commit_sha: string | null;
  files: ChangeView['files'] | null;
  attempts: number;
  last_error: string | null;
  superseded_by: string | null;
  cancelled_by: string | null;
  retry_of: string | null;
  created_at: Date;
  updated_at: Date;
}

const SELECT = `SELECT c.*, o.slug AS org FROM change_requests c LEFT JOIN organizations o ON o.id = c.organization_id`;

function present(row: Row): ChangeView {
  return {
    id: row.id,
    kind: row.kind,
    status: row.status,
    org: row.org,
    instanceId: row.instance_id,
    mergePolicy: row.merge_policy,
    requestedBy: row.requested_by,
    payload: row.payload,
    batchId: row.batch_id,
    branch: row.branch,
    pullRequestNumber: row.pull_request_number,
    pullRequestUrl: row.pull_request_url,
    commitSha: row.commit_sha,
    mergeCommitSha: row.merge_commit_sha,
    files: row.files ?? [],
    attempts: row.attempts,
    lastError: row.last_error,
    supersededBy: row.superseded_by,
    cancelledBy: row.cancelled_by,
    retryOf: row.retry_of,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** One change, whoever's it is (the service's own view; the API scopes with getVisibleChange). */
export async function getChange(sequelize: Sequelize, id: string): Promise<ChangeView> {
  return selectChange(sequelize, id, undefined);
}

/**
 * One change as `principal` may see it: platform admins any change; members of an org that
 * org's changes (404 for any other, whether or not it exists). A change belongs to one org, and
 * each field is that change's own (its files, its payload); what it shares with other orgs'
 * changes in a batch is only the batch's id, branch and pull request.
 */
export async function getVisibleChange(sequelize: Sequelize, principal: Principal, id: string, tx?: Transaction): Promise<ChangeView> {
  return selectChange(sequelize, id, principal.platformAdmin ? undefined : principal.subject, tx);
}

/** The change; with `member`, only when that subject is a member of the change's org. */
async function selectChange(sequelize: Sequelize, id: string, member: string | undefined, tx?: Transaction): Promise<ChangeView> {
  const [row] = await sequelize.query<Row>(
    `${SELECT} WHERE c.id = :id ${member === undefined ? '' : 'AND EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = c.organization_id AND m.subject = :member)'}`,
    { type: QueryTypes.SELECT, transaction: tx ?? null, replacements: { id, member: member ?? null } },
  );
  if (!row) throw new NotFoundError(`Change ${id} does not exist.`);
  return present(row);
}

export interface ChangeFilter {
  /** Only changes of the orgs this subject is a member of (absent: every change, for platform admins). */
  member?: string;
  org?: string;
  status?: string;
  kind?: string;
  limit: number;
  cursor?: string;
}

/** Newest first; the cursor is the (created_at, id) of the last item, opaque to clients. */
export async function listChanges(sequelize: Sequelize, filter: ChangeFilter): Promise<{ items: ChangeView[]; nextCursor: string | null }> {
  const where: string[] = [];
  const replacements: Record<string, unknown> = { limit: filter.limit + 1 };
  if (filter.member !== undefined) {
    where.push('c.organization_id IN (SELECT organization_id FROM memberships WHERE subject = :member)');
    replacements.member = filter.member;
  }
  if (filter.org !== undefined) {
    where.push('o.slug = :org');
    replacements.org = filter.org;
  }
  if (filter.status !== undefined) {
    where.push('c.status = CAST(:status AS change_status)');
    replacements.status = filter.status;
  }
  if (filter.kind !== undefined) {
    where.push('c.kind = CAST(:kind AS change_kind)');
    replacements.kind = filter.kind;
  }
  if (filter.cursor !== undefined) {
    where.push('(c.created_at, c.id) < (CAST(:cursorAt AS timestamptz), CAST(:cursorId AS uuid))');
    Object.assign(replacements, decodePageCursor(filter.cursor));
  }
  const rows = await sequelize.query<Row & { cursor_at: string }>(`${SELECT.replace('SELECT ', 'SELECT c.created_at::text AS cursor_at, ')} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY c.created_at DESC, c.id DESC LIMIT :limit`, {
    type: QueryTypes.SELECT,
    replacements,
  });
  const items = rows.slice(0, filter.limit).map(present);
  const last = rows.length > filter.limit ? rows[filter.limit - 1]! : undefined;
  return { items, nextCursor: last ? encodePageCursor(last.cursor_at, last.id) : null };
}

/** Pull request links of changes, by id: the audit joins Git history with them. */
export async function pullRequestLinks(sequelize: Sequelize, ids: string[]): Promise<Map<string, { url: string | null; number: number | null; status: string }>> {
  if (ids.length === 0) return new Map();
  const rows = await sequelize.query<{ id: string; pull_request_url: string | null; pull_request_number: number | null; status: string }>(
    'SELECT id, pull_request_url, pull_request_number, status FROM change_requests WHERE id IN (:ids)',
    { type: QueryTypes.SELECT, replacements: { ids } },
  );
  return new Map(rows.map((r) => [r.id, { url: r.pull_request_url, number: r.pull_request_number, status: r.status }]));
}
