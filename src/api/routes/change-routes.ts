import { Type } from '@sinclair/typebox';
import type { Sequelize } from 'sequelize';
import { principalOfRequest } from '../auth/authenticate.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { getVisibleChange, listChanges } from '../../domain/changes/change-views.ts';
import { cancelChange, retryChange } from '../../domain/changes/change-steering.ts';
import type { BillingSettings } from '../../domain/billing/instance-billing.ts';
import { mergeChange } from '../../domain/changes/change-merge.ts';
import { tenantAudit } from '../../domain/tenant-audit.ts';
import { requireOrgAccess } from '../../domain/organization-access.ts';
import type { GitopsRepository } from '../../gitops/repository.ts';
import { Nullable, OrgSlugSchema, Timestamp, Uuid } from './api-schemas.ts';
import { PlatformBootstrapPayload } from '../../gitops/render/change-payloads.ts';
import { CHANGE_KINDS, type MergePolicies } from '../../domain/changes/change-kinds.ts';
import { CHANGE_STATUSES } from '../../domain/changes/change-status.ts';
import { proposePlatformBootstrap } from '../../domain/platform-bootstrap.ts';
import { proposeTenantRelayout } from '../../domain/tenant-relayout.ts';

export interface ChangeRouteDeps {
  sequelize: Sequelize;
  repository: GitopsRepository;
  /** Merge policy of platform.bootstrap changes, and of retries. */
  mergePolicy: MergePolicies;
  /** How long a retried create's setup-fee hold lasts. */
  billing: Pick<BillingSettings, 'holdTtlSeconds'>;
  /** Reads the base branch back after a merge (convergence). */
  afterMerge?: () => Promise<unknown>;
}

const Status = Type.Union(CHANGE_STATUSES.map((s) => Type.Literal(s)));
const Kind = Type.Union(CHANGE_KINDS.map((s) => Type.Literal(s)));
const Sha = Type.String({ pattern: '^[0-9a-f]{40}$' });

const ChangeSchema = Type.Object(
  {
    id: Uuid,
    kind: Kind,
    status: Status,
    org: Nullable(Type.String()),
    instanceId: Nullable(Uuid),
    mergePolicy: Type.String(),
    requestedBy: Type.String(),
    payload: Type.Unknown({ description: 'What was rendered (fixed when the change was accepted).' }),
    batchId: Nullable(Uuid),
    branch: Nullable(Type.String()),
    pullRequestNumber: Nullable(Type.Integer()),
    pullRequestUrl: Nullable(Type.String()),
    commitSha: Nullable(Type.String()),
    mergeCommitSha: Nullable(Type.String()),
    files: Type.Array(Type.Object({ path: Type.String(), action: Type.Union([Type.Literal('write'), Type.Literal('delete')]) }, { additionalProperties: false })),
    attempts: Type.Integer(),
    lastError: Nullable(Type.String()),
    supersededBy: Nullable(Type.String({ format: 'uuid', description: 'The later request that replaced it.' })),
    cancelledBy: Nullable(Type.String({ description: 'Who cancelled it (POST /changes/:id/cancel).' })),
    retryOf: Nullable(Type.String({ format: 'uuid', description: 'The failed change this one proposes again (POST /changes/:id/retry).' })),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Uuid });
const Limit = Type.Integer({ minimum: 1, maximum: 100, default: 20 });
const problem = { description: 'Problem details (RFC 9457).' };

const AuditEntrySchema = Type.Object(
  {
    commitSha: Sha,
    title: Type.String(),
    source: Type.Union([Type.Literal('control-plane'), Type.Literal('external')], { description: '`external`: a commit a person or another tool put on the base branch (no Batch-Id trailer).' }),
    author: Type.Object({ name: Type.String(), email: Type.String() }, { additionalProperties: false, description: "The commit's Git author." }),
    authoredAt: Timestamp,
    changeIds: Type.Array(Type.String()),
    instanceIds: Type.Array(Type.String()),
    offerings: Type.Array(Type.String()),
    requestedBy: Type.Array(Type.String()),
    reasons: Type.Array(Type.String()),
    pullRequests: Type.Array(Type.Object({ changeId: Type.String(), number: Nullable(Type.Integer()), url: Nullable(Type.String()) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

/** The GitOps change log: what each change touched and where it is (admins), and a tenant's Git history (members). */
export function changeRoutes(deps: ChangeRouteDeps): RouteSpec[] {
  return [
    defineRoute({
      method: 'get',
      path: '/changes',
      operationId: 'listChanges',
      summary: 'List change requests, newest first',
      description: "Platform admins see every change; anyone else the changes of the orgs they are a member of.",
      tags: ['changes'],
      access: 'authenticated',
      query: Type.Object({ org: Type.Optional(OrgSlugSchema), status: Type.Optional(Status), kind: Type.Optional(Kind), limit: Type.Optional(Limit), cursor: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
      responses: {
        200: { description: 'A page of changes.', schema: Type.Object({ items: Type.Array(ChangeSchema), nextCursor: Nullable(Type.String()) }, { additionalProperties: false }) },
        400: problem,
        401: problem,
        403: problem,
      },
      handler: async ({ ctx, query }) => {
        const principal = principalOfRequest(ctx);
        ctx.body = await listChanges(deps.sequelize, { ...query, limit: query.limit ?? 20, ...(principal.platformAdmin ? {} : { member: principal.subject }) });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/changes/:id',
      operationId: 'getChange',
      summary: 'One change request: what it touched, its branch, pull request, commits and status',
      description: "Members of the change's org and platform admins; every field is the change's own (a batch shares only its id, branch and pull request).",
      tags: ['changes'],
      access: 'authenticated',
      params: IdParams,
      responses: { 200: { description: 'The change.', schema: ChangeSchema }, 401: problem, 404: problem },
      handler: async ({ ctx, params }) => {
        ctx.body = await getVisibleChange(deps.sequelize, principalOfRequest(ctx), params.id);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/changes/:id/cancel',
      operationId: 'cancelChange',
      summary: 'Withdraw a pending or open change',
      description:
        "The requester (with write access) or an owner of the change's org, or a platform admin. A pending change leaves its batch; an open pull request is closed with a comment, or the change's files are taken out of a shared batch branch (asynchronously, by the withdrawal outbox). The instance goes back to what main holds: a create that never merged ends `rejected`, its setup-fee hold voided; a cancelled delete wants the instance again. Cancelling a cancelled change answers it again. A merged, closed, failed or superseded change is a 409 that says what to do instead.",
      tags: ['changes'],
      access: 'authenticated',
      params: IdParams,
      responses: { 200: { description: 'The change, cancelled.', schema: ChangeSchema }, 401: problem, 403: problem, 404: problem, 409: problem },
      handler: async ({ ctx, params, transaction }) => {
        const principal = principalOfRequest(ctx);
        ctx.body = await transaction(async (tx) => {
          await cancelChange(deps, tx, principal, params.id);
          return getVisibleChange(deps.sequelize, principal, params.id, tx);
        });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/changes/:id/retry',
      operationId: 'retryChange',
      summary: 'Propose a failed change again, as a new change with the same payload',
      description:
        "Who may cancel a change may retry it. Only a failed change, and for an instance only its latest request (a later one has replaced anything older: 409 change-outdated). The new change names the failed one in retryOf; retrying the same failed change again answers that retry (200). A failed create holds its setup fee again (402 when the wallet cannot cover it; nothing is written).",
      tags: ['changes'],
      access: 'authenticated',
      params: IdParams,
      responses: {
        200: { description: 'Retried already: the retry.', schema: ChangeSchema },
        202: { description: 'Accepted: the new change, pending.', schema: ChangeSchema },
        401: problem,
        402: problem,
        403: problem,
        404: problem,
        409: problem,
      },
      handler: async ({ ctx, params, transaction }) => {
        const principal = principalOfRequest(ctx);
        ctx.body = await transaction(async (tx) => {
          const { changeId, created } = await retryChange(deps, tx, principal, params.id);
          ctx.status = created ? 202 : 200;
          return getVisibleChange(deps.sequelize, principal, changeId, tx);
        });
      },
    }),
    defineRoute({
      method: 'post',
      path: '/changes/:id/merge',
      operationId: 'mergeChange',
      summary: "Merge a change's pull request, as a reviewer would",
      description: 'Every change of the same pull request (a batch) is merged with it. Merging a merged change answers with the same merge.',
      tags: ['changes'],
      access: 'platform-admin',
      params: IdParams,
      responses: {
        200: {
          description: 'Merged.',
          schema: Type.Object({ id: Uuid, pullRequestNumber: Type.Integer(), mergeCommitSha: Sha, changeIds: Type.Array(Uuid) }, { additionalProperties: false }),
        },
        401: problem,
        403: problem,
        404: problem,
        409: problem,
      },
      handler: async ({ ctx, params }) => {
        ctx.body = await mergeChange(deps, params.id, principalOfRequest(ctx).subject);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/platform/bootstrap',
      operationId: 'proposePlatformBootstrap',
      summary: "Propose the platform's deployment (its roles, the control plane, the tenant pickup) as a change",
      description: 'Renders templates/platform/ into platform/base/ (platform-apps, cmp-control-plane, argocd-tenants, and the roles sso, vault, cms, commerce unless `without` names them; a rendered role needs its host, cms also its image: 400 otherwise) through the change worker, like any other change. While the same payload is already proposed and not yet merged, closed or failed, that change is answered. `npm run bootstrap` does the same from a shell.',
      tags: ['changes'],
      access: 'platform-admin',
      body: PlatformBootstrapPayload,
      responses: { 202: { description: 'Accepted: the change is queued.', schema: Type.Object({ changeId: Uuid }, { additionalProperties: false }) }, 400: problem, 401: problem, 403: problem },
      handler: async ({ ctx, body }) => {
        ctx.status = 202;
        const { changeId } = await proposePlatformBootstrap(deps.sequelize, body, principalOfRequest(ctx).subject, deps.mergePolicy);
        ctx.body = { changeId };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/platform/tenant-layout',
      operationId: 'proposeTenantRelayout',
      summary: 'Propose moving every workspace still at tenants/<org>/ to tenants/_<bucket>/<org>/',
      description:
        'One change that moves, file for file, what main holds under each flat org directory to the bucketed layout (README "Repository layout"), as a pull request like any other. Changes asked for before it are published first; changes asked for after it wait until it is merged, closed or failed. While one is pending or open, that one is answered. 200 with changeId null when no workspace is left to move.',
      tags: ['changes'],
      access: 'platform-admin',
      body: Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 500 })) }, { additionalProperties: false }),
      responses: {
        200: { description: 'Nothing to move: every workspace is in the bucketed layout.', schema: Type.Object({ changeId: Type.Null(), orgs: Type.Array(Type.String(), { maxItems: 0 }) }, { additionalProperties: false }) },
        202: { description: 'Accepted: the change is queued (or was already).', schema: Type.Object({ changeId: Uuid, orgs: Type.Array(Type.String()) }, { additionalProperties: false }) },
        400: problem,
        401: problem,
        403: problem,
      },
      handler: async ({ ctx, body }) => {
        const proposed = await proposeTenantRelayout(deps.sequelize, principalOfRequest(ctx).subject, deps.mergePolicy, body.reason);
        ctx.status = proposed.changeId ? 202 : 200;
        ctx.body = { changeId: proposed.changeId, orgs: proposed.orgs };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/orgs/:org/audit',
      operationId: 'getOrgAudit',
      summary: "A workspace's history, read from Git",
      description: 'Commits on the base branch that touched tenants/<org>/, newest first, with their trailers and pull requests. Members of the org and platform admins.',
      tags: ['changes'],
      access: 'authenticated',
      params: Type.Object({ org: OrgSlugSchema }),
      query: Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Sha) }, { additionalProperties: false }),
      responses: {
        200: {
          description: 'A page of history, and the directories under tenants/<org>/apps/ on the base branch that no instance of the org owns.',
          schema: Type.Object(
            {
              items: Type.Array(AuditEntrySchema),
              nextCursor: Nullable(Type.String()),
              unknownPaths: Type.Array(
                Type.Object({ path: Type.String(), commitSha: Type.String(), author: Nullable(Type.String()), firstSeenAt: Timestamp }, { additionalProperties: false }),
              ),
            },
            { additionalProperties: false },
          ),
        },
        400: problem,
        401: problem,
        404: problem,
      },
      handler: async ({ ctx, params, query }) => {
        const principal = principalOfRequest(ctx);
        if (!principal.platformAdmin) await requireOrgAccess(deps.sequelize, undefined, principal, params.org, 'read');
        ctx.body = await tenantAudit(deps, params.org, { limit: query.limit ?? 20, ...(query.cursor ? { cursor: query.cursor } : {}) });
      },
    }),
  ];
}
