import { Type } from '@sinclair/typebox';
import { principalOfRequest } from '../auth/authenticate.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { createInstance, deleteInstance, getInstance, listInstances, updateInstance, type Instance, type InstanceDeps } from '../../domain/instances.ts';
import { previewRequest, type PreviewDeps } from '../../domain/changes/change-preview.ts';
import type { Principal } from '../../domain/principal.ts';
import type { Transaction } from 'sequelize';
import type { Context } from 'koa';
import { INSTANCE_STATES } from '../../domain/instance-state.ts';
import { READY_REASONS, SYNCED_REASONS } from '../../domain/instance-conditions.ts';
import { InstanceNameSchema, Nullable, OfferingSlugSchema, OrgSlugSchema, ProjectSlugSchema, Timestamp, Uuid } from './api-schemas.ts';

const State = Type.Union(INSTANCE_STATES.map((s) => Type.Literal(s)));
const Parameters = Type.Record(Type.String(), Type.Unknown(), { description: "Checked against the offering version's parameters schema; defaults are filled in." });
const VersionString = Type.String({ minLength: 5, maxLength: 64, description: 'Semantic version of the offering.' });
const Reason = Type.String({ minLength: 1, maxLength: 500, description: 'Why: recorded as a Reason: trailer on the commit (one line) and in the pull request.' });

const InstanceFields = {
  id: Uuid,
  org: OrgSlugSchema,
  project: ProjectSlugSchema,
  offering: OfferingSlugSchema,
  version: VersionString,
  name: InstanceNameSchema,
  parameters: Parameters,
  state: State,
  desiredState: Type.Union([Type.Literal('present'), Type.Literal('absent')]),
  desired: Type.Object(
    { version: Nullable(Type.String()), parameters: Nullable(Type.Record(Type.String(), Type.Unknown())) },
    { additionalProperties: false, description: 'What the latest request asks for; version and parameters are what the base branch holds.' },
  ),
  observed: Type.Object(
    { present: Type.Boolean(), commitSha: Nullable(Type.String()) },
    { additionalProperties: false, description: 'Whether the base branch holds the instance, and the commit that last changed it there.' },
  ),
  drift: Nullable(Type.String({ description: 'Why the base branch disagrees with the latest request after a merge; null when they agree.' })),
  lastChangeId: Nullable(Uuid),
  lastError: Nullable(Type.String()),
  conditions: Type.Array(
    Type.Object(
      {
        type: Type.Union([Type.Literal('Synced'), Type.Literal('Ready')], { description: 'Synced: main holds what was last asked for. Ready: Argo CD reports it healthy at that spec.' }),
        status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
        reason: Type.Union([...SYNCED_REASONS, ...READY_REASONS].map((r) => Type.Literal(r)), { description: 'A stable CamelCase code (README, API: conditions).' }),
        message: Type.String(),
        lastTransitionTime: Timestamp,
      },
      { additionalProperties: false },
    ),
    { description: "Why the instance is in its state, as Kubernetes' metav1.Condition." },
  ),
  createdBy: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
};
const InstanceSchema = Type.Object(InstanceFields, { additionalProperties: false });
const EventSchema = Type.Object(
  {
    id: Type.Integer(),
    fromState: Nullable(State),
    toState: State,
    cause: Type.String(),
    actor: Type.String(),
    changeId: Nullable(Uuid),
    deliveryId: Nullable(Type.String()),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
const ChangeSchema = Type.Object(
  {
    id: Uuid,
    kind: Type.String(),
    status: Type.String(),
    mergePolicy: Type.String(),
    branch: Nullable(Type.String()),
    pullRequestNumber: Nullable(Type.Integer()),
    pullRequestUrl: Nullable(Type.String()),
    commitSha: Nullable(Type.String()),
    mergeCommitSha: Nullable(Type.String()),
    attempts: Type.Integer(),
    lastError: Nullable(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { additionalProperties: false },
);
const InstanceDetailSchema = Type.Object(
  { ...InstanceFields, events: Type.Array(EventSchema, { description: 'Oldest first.' }), changes: Type.Array(ChangeSchema, { description: 'Oldest first.' }) },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Uuid });

const DryRunQuery = Type.Object(
  {
    dryRun: Type.Optional(
      Type.Boolean({ description: 'Validate exactly as the real request, write nothing, and answer 200 with what the change would do: each file under tenants/<org>/ with a unified diff against main, the merge policy and the price.' }),
    ),
  },
  { additionalProperties: false },
);
/** DELETE takes no body: its reason is a query parameter. */
const DeleteQuery = Type.Object({ ...DryRunQuery.properties, reason: Type.Optional(Reason) }, { additionalProperties: false });
const PreviewSchema = Type.Object(
  {
    dryRun: Type.Literal(true),
    result: InstanceSchema,
    change: Nullable(
      Type.Object(
        {
          kind: Type.String(),
          mergePolicy: Type.String(),
          baseCommit: Nullable(Type.String({ description: 'The commit of the base branch the diffs are against.' })),
          files: Type.Array(
            Type.Object({ path: Type.String(), action: Type.Union([Type.Literal('write'), Type.Literal('delete')]), diff: Type.String({ description: 'Unified diff against the base branch.' }) }, { additionalProperties: false }),
          ),
        },
        { additionalProperties: false, description: 'The change the request would queue; null when it needs none.' },
      ),
    ),
    replaces: Type.Array(Type.Object({ changeId: Uuid, as: Type.Union([Type.Literal('superseded'), Type.Literal('cancelled')]) }, { additionalProperties: false })),
    price: Nullable(Type.Object({ currency: Type.String(), setupFeeHold: Type.Integer(), hourlyRate: Type.Integer() }, { additionalProperties: false })),
    note: Nullable(Type.String()),
  },
  { additionalProperties: false, description: 'A dry run: nothing was written.' },
);

export interface InstanceRouteDeps extends InstanceDeps {
  /** What a dry run renders with and compares against. */
  preview: Omit<PreviewDeps, 'sequelize'>;
}

export function instanceRoutes(deps: InstanceRouteDeps): RouteSpec[] {
  const { sequelize } = deps;
  const renderingDeps = { ...deps, renders: (templatePath: string) => deps.preview.catalog.offerings.has(templatePath) };
  /** The request as it would run (dry run: rolled back, answered 200 with its preview), or for real (202). */
  const answer = async (ctx: Context, dryRun: boolean | undefined, transaction: <T>(work: (tx: Transaction) => Promise<T>) => Promise<T>, work: (tx: Transaction, principal: Principal) => Promise<Instance>) => {
    const principal = principalOfRequest(ctx);
    if (dryRun) {
      ctx.status = 200;
      ctx.body = await previewRequest({ sequelize, ...deps.preview }, (tx) => work(tx, principal), (instance) => instance.id);
      return;
    }
    ctx.status = 202;
    ctx.body = await transaction((tx) => work(tx, principal));
  };
  return [
    defineRoute({
      method: 'get',
      path: '/instances',
      operationId: 'listInstances',
      summary: "Instances in the caller's organizations, newest first, a page at a time.",
      tags: ['instances'],
      access: 'authenticated',
      query: Type.Object(
        {
          org: Type.Optional(OrgSlugSchema),
          project: Type.Optional(ProjectSlugSchema),
          state: Type.Optional(State),
          limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
          cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'The nextCursor of the previous page.' })),
        },
        { additionalProperties: false },
      ),
      responses: {
        200: {
          description: 'A page of instances.',
          schema: Type.Object({ items: Type.Array(InstanceSchema), nextCursor: Nullable(Type.String()) }, { additionalProperties: false }),
        },
      },
      handler: async ({ ctx, query }) => {
        ctx.body = await listInstances(sequelize, principalOfRequest(ctx), query);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/instances/:id',
      operationId: 'getInstance',
      summary: 'One instance with its events and change requests.',
      tags: ['instances'],
      access: 'authenticated',
      params: IdParams,
      responses: { 200: { description: 'The instance.', schema: InstanceDetailSchema } },
      handler: async ({ ctx, params }) => {
        ctx.body = await getInstance(sequelize, principalOfRequest(ctx), params.id);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/instances',
      operationId: 'createInstance',
      summary: 'Requests a new instance of an offering; the change that deploys it is committed asynchronously.',
      tags: ['instances'],
      access: 'authenticated',
      idempotent: true,
      body: Type.Object(
        {
          org: OrgSlugSchema,
          project: Type.Optional(ProjectSlugSchema),
          offering: OfferingSlugSchema,
          version: Type.Optional(VersionString),
          name: InstanceNameSchema,
          parameters: Type.Optional(Parameters),
          reason: Type.Optional(Reason),
        },
        { additionalProperties: false },
      ),
      query: DryRunQuery,
      responses: {
        200: { description: 'Dry run: what the request would do; nothing was written.', schema: PreviewSchema },
        202: { description: 'Accepted: the instance, in state requested.', schema: InstanceSchema },
        402: { description: "The org's wallet cannot cover the version's setup fee (held until the instance is ready); nothing was created." },
      },
      handler: async ({ ctx, body, query, transaction }) => {
        await answer(ctx, query.dryRun, transaction, (tx, principal) => createInstance(renderingDeps, tx, principal, body));
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/instances/:id',
      operationId: 'updateInstance',
      summary: 'Moves an instance to another version and/or new parameters (an update change).',
      tags: ['instances'],
      access: 'authenticated',
      idempotent: true,
      params: IdParams,
      body: Type.Object({ version: Type.Optional(VersionString), parameters: Type.Optional(Parameters), reason: Type.Optional(Reason) }, { additionalProperties: false, minProperties: 1 }),
      query: DryRunQuery,
      responses: {
        200: { description: 'Dry run: what the request would do; nothing was written.', schema: PreviewSchema },
        202: { description: 'Accepted: the instance, in state updating.', schema: InstanceSchema },
      },
      handler: async ({ ctx, params, body, query, transaction }) => {
        await answer(ctx, query.dryRun, transaction, (tx, principal) => updateInstance(deps, tx, principal, params.id, body));
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/instances/:id',
      operationId: 'deleteInstance',
      summary: 'Deprovisions an instance (a delete change).',
      tags: ['instances'],
      access: 'authenticated',
      idempotent: true,
      params: IdParams,
      query: DeleteQuery,
      responses: {
        200: { description: 'Dry run: what the request would do; nothing was written.', schema: PreviewSchema },
        202: { description: 'Accepted: the instance, deleting (or deleted at once when main never held it).', schema: InstanceSchema },
      },
      handler: async ({ ctx, params, query, transaction }) => {
        await answer(ctx, query.dryRun, transaction, (tx, principal) => deleteInstance(deps, tx, principal, params.id, query.reason ? { reason: query.reason } : {}));
      },
    }),
  ];
}
