import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { parseChange } from '../../gitops/render/change-payloads.ts';
import { renderChange } from '../../gitops/render/change-renderer.ts';
import type { TemplateCatalog } from '../../gitops/render/template-catalog.ts';
import { tenantDir, type TenantLayout } from '../../gitops/tenant-paths.ts';
import type { FileChange, GitopsRepository } from '../../gitops/repository.ts';
import type { ChangeKind, MergePolicy } from './change-kinds.ts';

/**
 * Dry runs (`?dryRun=true` on POST /instances, PATCH and DELETE), as Kubernetes' server-side
 * dry run does: the request runs exactly as the real one would, with every check (catalog,
 * parameters, name, role, wallet), in a transaction that is always rolled back, so nothing is
 * written (no instance, no change, no hold). What it would have done is captured before the
 * rollback; the change is then rendered as the worker would render it and compared with the
 * base branch, file by file.
 */
export interface PreviewDeps {
  sequelize: Sequelize;
  repository: Pick<GitopsRepository, 'baseBranch' | 'getBranch' | 'readDirectories'>;
  catalog: TemplateCatalog;
}

export interface PreviewFile {
  path: string;
  action: 'write' | 'delete';
  /** Unified diff against the base branch (`/dev/null` for a file main lacks or would lose). */
  diff: string;
}

export interface ChangePreview<T> {
  dryRun: true;
  /** What the request would answer (a create's id is one that will never exist). */
  result: T;
  /** The change the request would queue; null when it needs none (see `note`). */
  change: { kind: ChangeKind; mergePolicy: MergePolicy; baseCommit: string | null; files: PreviewFile[] } | null;
  /** Pending or open changes of the instance the request would supersede or cancel. */
  replaces: { changeId: string; as: 'superseded' | 'cancelled' }[];
  /** The setup fee it would hold (minor units), and the hourly rate main's version would be metered at. */
  price: { currency: string; setupFeeHold: number; hourlyRate: number } | null;
  note: string | null;
}

interface Captured {
  change: { id: string; kind: ChangeKind; merge_policy: MergePolicy; payload: unknown; instance_id: string | null; org: string; tenant_layout: TenantLayout } | undefined;
  replaces: ChangePreview<unknown>['replaces'];
  hold: { currency: string; amount: string } | undefined;
  rate: { currency: string; hourly_rate_minor: string } | undefined;
}

class RollBack extends Error {}

/**
 * Runs `work` as the real request would and rolls it back; `instanceId` names the instance it
 * acted on (read from its answer). Errors the request would answer (400, 402, 404, 409, 422)
 * are thrown as they are.
 */
export async function previewRequest<T>(deps: PreviewDeps, work: (tx: Transaction) => Promise<T>, instanceIdOf: (result: T) => string): Promise<ChangePreview<T>> {
  let captured: { result: T; captured: Captured } | undefined;
  try {
    await deps.sequelize.transaction(async (tx) => {
      const result = await work(tx);
      captured = { result, captured: await capture(deps.sequelize, tx, instanceIdOf(result)) };
      throw new RollBack('dry run');
    });
  } catch (error) {
    if (!(error instanceof RollBack)) throw error;
  }
  const { result, captured: what } = captured!;
  const change = what.change ? await renderAgainstMain(deps, what.change) : null;
  const hourly = what.rate ? Number(what.rate.hourly_rate_minor) : 0;
  return {
    dryRun: true,
    result,
    change,
    replaces: what.replaces,
    price: what.hold ? { currency: what.hold.currency, setupFeeHold: Number(what.hold.amount), hourlyRate: hourly } : what.rate ? { currency: what.rate.currency, setupFeeHold: 0, hourlyRate: hourly } : null,
    note: what.change ? null : 'No Git change: main never held the instance, so deleting it cancels its changes on the way and nothing else.',
  };
}

/**
 * What the request wrote in this transaction: rows it inserted carry the transaction's start
 * time (`now()` is constant within a transaction, and every insert defaults created_at to it),
 * and rows it moved were moved by it (`updated_at = now()`).
 */
async function capture(sequelize: Sequelize, tx: Transaction, instanceId: string): Promise<Captured> {
  const [change] = await sequelize.query<NonNullable<Captured['change']>>(
    `SELECT c.id, c.kind, c.merge_policy, c.payload, c.instance_id, o.slug AS org, o.tenant_layout FROM change_requests c JOIN organizations o ON o.id = c.organization_id
      WHERE c.instance_id = :instanceId AND c.created_at = now() ORDER BY c.id LIMIT 1`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { instanceId } },
  );
  const replaces = await sequelize.query<{ changeId: string; as: 'superseded' | 'cancelled' }>(
    `SELECT id AS "changeId", status::text AS "as" FROM change_requests
      WHERE instance_id = :instanceId AND status IN ('superseded', 'cancelled') AND updated_at = now() AND created_at < now() ORDER BY created_at, id`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { instanceId } },
  );
  // The setup fee held for the version the request asks for (a create's, or an upgrade's).
  const [hold] = await sequelize.query<NonNullable<Captured['hold']>>(
    `SELECT w.currency, a.amount::text AS amount FROM billing_authorizations a JOIN ledger_accounts w ON w.id = a.wallet_id
       JOIN offering_versions v ON v.id = a.offering_version_id JOIN offerings f ON f.id = v.offering_id
      WHERE a.instance_id = :instanceId AND a.status = 'pending'
        AND f.slug = (:payload)::jsonb->>'offering' AND v.version = (:payload)::jsonb->>'version'
      ORDER BY a.created_at DESC LIMIT 1`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { instanceId, payload: JSON.stringify(change?.payload ?? {}) } },
  );
  // The version the request asks for (a create's or update's payload), else the one main holds.
  const [rate] = await sequelize.query<NonNullable<Captured['rate']>>(
    `SELECT v.currency, v.hourly_rate_minor::text AS hourly_rate_minor FROM instances i
       JOIN offering_versions v ON v.id = coalesce(
         (SELECT w.id FROM offering_versions w JOIN offerings f ON f.id = w.offering_id
           WHERE f.slug = (:payload)::jsonb->>'offering' AND w.version = (:payload)::jsonb->>'version'),
         i.observed_offering_version_id, i.offering_version_id)
      WHERE i.id = :instanceId`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { instanceId, payload: JSON.stringify(change?.payload ?? {}) } },
  );
  return { change, replaces, hold, rate };
}

/** The change rendered as the worker would, and each file it touches compared with main. */
async function renderAgainstMain(deps: PreviewDeps, change: NonNullable<Captured['change']>): Promise<NonNullable<ChangePreview<unknown>['change']>> {
  const files = renderChange(deps.catalog, parseChange(change.kind, change.payload), { ...(change.instance_id ? { instanceId: change.instance_id } : {}), layout: change.tenant_layout });
  const base = await deps.repository.getBranch(deps.repository.baseBranch);
  const before = new Map<string, string>();
  if (base) {
    const dirs = [...new Set(files.map((f) => ('delete' in f ? f.path : f.path.split('/').slice(0, -1).join('/'))))];
    for (const inDir of (await deps.repository.readDirectories(base, dirs)).values()) for (const [path, content] of inDir) before.set(path, content);
  }
  const after = applyChanges(before, files);
  // Only what is below the tenant's own directory is shown: an instance change writes nowhere else.
  const scope = `${tenantDir(change.org, change.tenant_layout)}/`;
  const paths = [...new Set([...before.keys(), ...after.keys()])].filter((p) => p.startsWith(scope) && before.get(p) !== after.get(p)).sort();
  return {
    kind: change.kind,
    mergePolicy: change.merge_policy,
    baseCommit: base ?? null,
    files: paths.map((path) => {
      const old = before.get(path);
      const next = after.get(path);
      return {
        path,
        action: next === undefined ? 'delete' : 'write',
        diff: createTwoFilesPatch(old === undefined ? '/dev/null' : `a/${path}`, next === undefined ? '/dev/null' : `b/${path}`, old ?? '', next ?? '', undefined, undefined, {
          headerOptions: FILE_HEADERS_ONLY,
        }),
      };
    }),
  };
}

/** The files after `changes`, as the repository applies them: a delete removes a file or a whole directory; later writes win. */
function applyChanges(before: Map<string, string>, changes: FileChange[]): Map<string, string> {
  const after = new Map(before);
  for (const change of changes) {
    if ('delete' in change) {
      for (const path of [...after.keys()]) if (path === change.path || path.startsWith(`${change.path}/`)) after.delete(path);
    } else {
      after.set(change.path, change.content);
    }
  }
  return after;
}
