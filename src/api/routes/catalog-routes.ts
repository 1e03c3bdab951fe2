import { Type } from '@sinclair/typebox';
import type { Sequelize } from 'sequelize';
import type { TemplateCatalog } from '../../gitops/render/template-catalog.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { addOfferingVersion, createOffering, getOffering, listOfferings, setOfferingVersionStatus } from '../../domain/catalog.ts';
import { Nullable, OfferingSlugSchema, RoleSlugSchema, Timestamp } from './api-schemas.ts';

const Status = Type.Union([Type.Literal('active'), Type.Literal('deprecated'), Type.Literal('retired')], {
  description: 'active: orderable and the default; deprecated: orderable by version only; retired: refused for new instances and updates.',
});
const Pricing = Type.Object(
  {
    currency: Type.String({ pattern: '^[A-Z]{3}$', description: 'ISO 4217 code.' }),
    setupFee: Type.Integer({ minimum: 0, description: 'Charged once when the instance is ready, in minor units.' }),
    hourlyRate: Type.Integer({ minimum: 0, description: 'Per hour while ready, in minor units.' }),
  },
  { additionalProperties: false },
);
const SemverString = Type.String({ minLength: 5, maxLength: 64, description: 'Semantic version, e.g. 1.2.3.' });
const VersionSchema = Type.Object(
  {
    version: SemverString,
    status: Status,
    templatePath: Type.String({ description: 'Folder of the GitOps templates this version renders.' }),
    parametersSchema: Type.Record(Type.String(), Type.Unknown(), { description: 'JSON Schema 2020-12 of the instance parameters; every property has a default.' }),
    pricing: Pricing,
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
const OfferingSchema = Type.Object(
  {
    slug: OfferingSlugSchema,
    role: RoleSlugSchema,
    name: Type.String(),
    description: Type.String(),
    instancesPerWorkspace: Nullable(
      Type.Object({ max: Type.Integer({ minimum: 1 }), why: Type.String() }, { additionalProperties: false, description: 'At most max live instances per workspace (offering.yaml), and why; null: no limit.' }),
    ),
    versions: Type.Array(VersionSchema, { description: 'Newest first.' }),
  },
  { additionalProperties: false },
);
const SlugParams = Type.Object({ slug: OfferingSlugSchema });

/** `catalog`: the templates this build renders; a version published without one renderable there is refused. */
export function catalogRoutes(deps: { sequelize: Sequelize; catalog: TemplateCatalog }): RouteSpec[] {
  const { sequelize } = deps;
  return [
    defineRoute({
      method: 'get',
      path: '/offerings',
      operationId: 'listOfferings',
      summary: 'The catalog: every offering with its versions.',
      tags: ['catalog'],
      access: 'authenticated',
      responses: { 200: { description: 'Offerings by slug.', schema: Type.Object({ items: Type.Array(OfferingSchema) }, { additionalProperties: false }) } },
      handler: async ({ ctx }) => {
        ctx.body = { items: await listOfferings(sequelize) };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/offerings/:slug',
      operationId: 'getOffering',
      summary: 'One offering with its versions, parameter schemas and prices.',
      tags: ['catalog'],
      access: 'authenticated',
      params: SlugParams,
      responses: { 200: { description: 'The offering.', schema: OfferingSchema } },
      handler: async ({ ctx, params }) => {
        ctx.body = await getOffering(sequelize, undefined, params.slug);
      },
    }),
    defineRoute({
      method: 'post',
      path: '/offerings',
      operationId: 'createOffering',
      summary: 'Adds an offering, without versions yet (platform admins).',
      tags: ['catalog'],
      access: 'platform-admin',
      idempotent: true,
      body: Type.Object(
        {
          slug: OfferingSlugSchema,
          role: RoleSlugSchema,
          name: Type.String({ minLength: 1, maxLength: 200 }),
          description: Type.String({ minLength: 1, maxLength: 2000 }),
        },
        { additionalProperties: false },
      ),
      responses: { 201: { description: 'The new offering.', schema: OfferingSchema } },
      handler: async ({ ctx, body, transaction }) => {
        ctx.status = 201;
        ctx.body = await transaction((tx) => createOffering(sequelize, tx, body));
      },
    }),
    defineRoute({
      method: 'post',
      path: '/offerings/:slug/versions',
      operationId: 'addOfferingVersion',
      summary: 'Publishes a version of an offering (platform admins). Published versions are immutable.',
      tags: ['catalog'],
      access: 'platform-admin',
      idempotent: true,
      params: SlugParams,
      body: Type.Object(
        {
          version: SemverString,
          status: Type.Optional(Status),
          parametersSchema: Type.Record(Type.String(), Type.Unknown()),
          pricing: Pricing,
          templatePath: Type.Optional(Type.String({ pattern: '^templates/offerings/[a-z0-9-]+/[0-9A-Za-z.+-]+$' })),
        },
        { additionalProperties: false },
      ),
      responses: { 201: { description: 'The new version.', schema: VersionSchema }, 422: { description: "Not semver, an unusable schema, or templates this build cannot render (the folder is missing, is another offering's, or fails with the schema's defaults)." } },
      handler: async ({ ctx, params, body, transaction }) => {
        ctx.status = 201;
        ctx.body = await transaction((tx) => addOfferingVersion(sequelize, tx, deps.catalog, params.slug, body));
      },
    }),
    defineRoute({
      method: 'patch',
      path: '/offerings/:slug/versions/:version',
      operationId: 'setOfferingVersionStatus',
      summary: 'Deprecates, retires or re-activates a version (platform admins).',
      tags: ['catalog'],
      access: 'platform-admin',
      idempotent: true,
      params: Type.Object({ slug: OfferingSlugSchema, version: SemverString }),
      body: Type.Object({ status: Status }, { additionalProperties: false }),
      responses: { 200: { description: 'The version.', schema: VersionSchema } },
      handler: async ({ ctx, params, body, transaction }) => {
        ctx.body = await transaction((tx) => setOfferingVersionStatus(sequelize, tx, params.slug, params.version, body.status));
      },
    }),
  ];
}
