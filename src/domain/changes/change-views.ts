import { QueryTypes, type Sequelize } from 'sequelize';
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
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

export async function getChange(sequelize: Sequelize, id: string): Promise<ChangeView> {
  const [row] = await sequelize.query<Row>(`${SELECT} WHERE c.id = :id`, { type: QueryTypes.SELECT, replacements: { id } });
  if (!row) throw new NotFoundError(`Change ${id} does not exist.`);
  return present(row);
}

export interface ChangeFilter {
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
