import { Type } from '@sinclair/typebox';
import type { Sequelize } from 'sequelize';
import { ConflictError, ForbiddenError, NotFoundError } from '../../errors.ts';
import { issueApiToken, listApiTokens, revokeApiToken, type ApiTokenSummary, type OrgApiTokenSummary, orgTokenSubject } from '../../db/api-tokens.ts';
import { listOrgTokens, mintOrgToken, refuseTokenMintedByOrgToken, revokeOrgToken } from '../../domain/org-tokens.ts';
import { MEMBERSHIP_ROLES } from '../../domain/organization-access.ts';
import { principalOfRequest } from '../auth/authenticate.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { Nullable, OrgSlugSchema, Timestamp, Uuid } from './api-schemas.ts';

const TokenName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: 'Unique among your live tokens, e.g. ci-deploy.' });
const TokenSummary = Type.Object(
  { id: Uuid, name: Type.String(), platformAdmin: Type.Boolean(), expiresAt: Nullable(Timestamp), lastUsedAt: Nullable(Timestamp), revokedAt: Nullable(Timestamp), createdAt: Timestamp },
  { additionalProperties: false },
);
const problem = { description: 'Problem details (RFC 9457).' };
const OrgTokenName = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,62}$', description: "Unique among the organization's live tokens, e.g. ci-deploy." });
const OrgTokenSummary = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    role: Type.Union(MEMBERSHIP_ROLES.map((r) => Type.Literal(r))),
    subject: Type.String({ description: 'Who the token acts as (Requested-By of its changes): `org-token:<id>`.' }),
    createdBy: Nullable(Type.String({ description: 'The subject that minted it.' })),
    expiresAt: Nullable(Timestamp),
    lastUsedAt: Nullable(Timestamp),
    revokedAt: Nullable(Timestamp),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);

function lifetime(t: Pick<ApiTokenSummary, 'expiresAt' | 'lastUsedAt' | 'revokedAt' | 'createdAt'>) {
  return {
    expiresAt: t.expiresAt?.toISOString() ?? null,
    lastUsedAt: t.lastUsedAt?.toISOString() ?? null,
    revokedAt: t.revokedAt?.toISOString() ?? null,
    createdAt: t.createdAt.toISOString(),
  };
}

const present = (t: ApiTokenSummary) => ({ id: t.id, name: t.name, platformAdmin: t.platformAdmin, ...lifetime(t) });

const presentOrgToken = (t: OrgApiTokenSummary) => ({ id: t.id, name: t.name, role: t.role, subject: orgTokenSubject(t.id), createdBy: t.createdBy, ...lifetime(t) });

/**
 * API tokens for machines (issue 14): whoever can call the API (a person through Keycloak, or a
 * token) mints tokens that act as themselves, with an expiry, lists and revokes them. Only a
 * platform admin's token may be a platform admin's. The secret is shown once; only its SHA-256
 * is stored. `npm run token` does the same from a shell, for the first token of a deployment.
 */
export function tokenRoutes(deps: { sequelize: Sequelize }): RouteSpec[] {
  return [
    defineRoute({
      method: 'post',
      path: '/me/tokens',
      operationId: 'createApiToken',
      summary: 'Mint an API token that acts as you (shown once)',
      tags: ['tokens'],
      access: 'authenticated',
      body: Type.Object(
        {
          name: TokenName,
          expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 365, default: 90 })),
          platformAdmin: Type.Optional(Type.Boolean({ description: 'Only a platform admin may ask for it.' })),
        },
        { additionalProperties: false },
      ),
      responses: {
        201: { description: 'The token; `token` is the secret, shown only now.', schema: Type.Object({ ...TokenSummary.properties, token: Type.String() }, { additionalProperties: false }) },
        400: problem,
        401: problem,
        403: problem,
        409: problem,
      },
      handler: async ({ ctx, body }) => {
        const principal = principalOfRequest(ctx);
        refuseTokenMintedByOrgToken(principal);
        if (body.platformAdmin && !principal.platformAdmin) throw new ForbiddenError('Only a platform admin may mint a platform admin token.');
        const issued = await issueApiToken(
          deps.sequelize,
          { name: body.name, subject: principal.subject, platformAdmin: body.platformAdmin === true, ...(principal.username ? { username: principal.username } : {}), ...(principal.email ? { email: principal.email } : {}) },
          body.expiresInDays ?? 90,
        );
        if (!issued) throw new ConflictError('token-name-taken', `You have a live token named ${body.name}; revoke it first (DELETE /me/tokens/:id) or choose another name.`);
        ctx.status = 201;
        ctx.body = { ...present({ ...issued, lastUsedAt: null, revokedAt: null }), token: issued.token };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/me/tokens',
      operationId: 'listApiTokens',
      summary: 'Your API tokens (never their secrets), newest first',
      tags: ['tokens'],
      access: 'authenticated',
      responses: { 200: { description: 'Your tokens.', schema: Type.Object({ items: Type.Array(TokenSummary) }, { additionalProperties: false }) }, 401: problem },
      handler: async ({ ctx }) => {
        ctx.body = { items: (await listApiTokens(deps.sequelize, principalOfRequest(ctx).subject)).map(present) };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/me/tokens/:id',
      operationId: 'revokeApiToken',
      summary: 'Revoke one of your API tokens (again: the same answer)',
      tags: ['tokens'],
      access: 'authenticated',
      params: Type.Object({ id: Uuid }),
      responses: { 204: { description: 'Revoked.' }, 401: problem, 404: problem },
      handler: async ({ ctx, params }) => {
        if (!(await revokeApiToken(deps.sequelize, principalOfRequest(ctx).subject, params.id))) throw new NotFoundError(`You have no token ${params.id}.`);
        ctx.status = 204;
      },
    }),
    defineRoute({
      method: 'post',
      path: '/orgs/:org/tokens',
      operationId: 'createOrgApiToken',
      summary: "Mint a token of the organization, acting in it only, with one role (shown once)",
      description:
        'For owners of the organization (or a platform admin). The token is a member of this organization only, with `role`; ' +
        'every other organization is 404 to it. It outlives the member who minted it; an org token cannot mint tokens.',
      tags: ['tokens'],
      access: 'authenticated',
      params: Type.Object({ org: OrgSlugSchema }),
      body: Type.Object(
        {
          name: OrgTokenName,
          role: Type.Union(MEMBERSHIP_ROLES.map((r) => Type.Literal(r)), { description: 'What it may do in the organization.' }),
          expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 365, default: 90 })),
        },
        { additionalProperties: false },
      ),
      responses: {
        201: { description: 'The token; `token` is the secret, shown only now.', schema: Type.Object({ ...OrgTokenSummary.properties, token: Type.String() }, { additionalProperties: false }) },
        400: problem,
        401: problem,
        403: problem,
        404: problem,
        409: problem,
      },
      handler: async ({ ctx, params, body, transaction }) => {
        const issued = await transaction((tx) =>
          mintOrgToken(deps.sequelize, tx, principalOfRequest(ctx), params.org, { name: body.name, role: body.role, expiresInDays: body.expiresInDays ?? 90 }),
        );
        ctx.status = 201;
        ctx.body = { ...presentOrgToken(issued), token: issued.token };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/orgs/:org/tokens',
      operationId: 'listOrgApiTokens',
      summary: "The organization's tokens (never their secrets), newest first",
      tags: ['tokens'],
      access: 'authenticated',
      params: Type.Object({ org: OrgSlugSchema }),
      responses: { 200: { description: 'The tokens.', schema: Type.Object({ items: Type.Array(OrgTokenSummary) }, { additionalProperties: false }) }, 401: problem, 403: problem, 404: problem },
      handler: async ({ ctx, params }) => {
        ctx.body = { items: (await listOrgTokens(deps.sequelize, principalOfRequest(ctx), params.org)).map(presentOrgToken) };
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/orgs/:org/tokens/:id',
      operationId: 'revokeOrgApiToken',
      summary: "Revoke one of the organization's tokens (again: the same answer)",
      tags: ['tokens'],
      access: 'authenticated',
      params: Type.Object({ org: OrgSlugSchema, id: Uuid }),
      responses: { 204: { description: 'Revoked.' }, 401: problem, 403: problem, 404: problem },
      handler: async ({ ctx, params, transaction }) => {
        await transaction((tx) => revokeOrgToken(deps.sequelize, tx, principalOfRequest(ctx), params.org, params.id));
        ctx.status = 204;
      },
    }),
  ];
}
