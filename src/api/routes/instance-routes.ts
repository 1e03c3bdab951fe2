import { Type } from '@sinclair/typebox';
import { principalOfRequest } from '../auth/authenticate.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { createInstance, deleteInstance, getInstance, listInstances, updateInstance, type InstanceDeps } from '../../domain/instances.ts';
import { INSTANCE_STATES } from '../../domain/instance-state.ts';
import { READY_REASONS, SYNCED_REASONS } from '../../domain/instance-conditions.ts';
import { InstanceNameSchema, Nullable, OfferingSlugSchema, OrgSlugSchema, ProjectSlugSchema, Timestamp, Uuid } from './api-schemas.ts';

const State = Type.Union(INSTANCE_STATES.map((s) => Type.Literal(s)));
const Parameters = Type.Record(Type.String(), Type.Unknown(), { description: "Checked against the offering version's parameters schema; defaults are filled in." });
const VersionString = Type.String({ minLength: 5, maxLength: 64, description: 'Semantic version of the offering.' });

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

export function instanceRoutes(deps: InstanceDeps): RouteSpec[] {
  const { sequelize } = deps;
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
        },
        { additionalProperties: false },
      ),
      responses: {
        202: { description: 'Accepted: the instance, in state requested.', schema: InstanceSchema },
        402: { description: "The org's wallet cannot cover the version's setup fee (held until the instance is ready); nothing was created." },
      },
      handler: async ({ ctx, body, transaction }) => {
        ctx.status = 202;
        ctx.body = await transaction((tx) => createInstance(deps, tx, principalOfRequest(ctx), body));
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
      body: Type.Object({ version: Type.Optional(VersionString), parameters: Type.Optional(Parameters) }, { additionalProperties: false, minProperties: 1 }),
      responses: { 202: { description: 'Accepted: the instance, in state updating.', schema: InstanceSchema } },
      handler: async ({ ctx, params, body, transaction }) => {
        ctx.status = 202;
        ctx.body = await transaction((tx) => updateInstance(deps, tx, principalOfRequest(ctx), params.id, body));
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
      responses: { 202: { description: 'Accepted: the instance, in state deleting.', schema: InstanceSchema } },
      handler: async ({ ctx, params, transaction }) => {
        ctx.status = 202;
        ctx.body = await transaction((tx) => deleteInstance(deps, tx, principalOfRequest(ctx), params.id));
      },
    }),
  ];
}
