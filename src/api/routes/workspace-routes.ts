import { Type } from '@sinclair/typebox';
import { principalOfRequest } from '../auth/authenticate.ts';
import { defineRoute, type RouteSpec } from '../route.ts';
import { ensureAutoWorkspace, getWorkspace, type WorkspaceDeps } from '../../domain/workspaces.ts';
import { createProject, createTeam, listProjects, listTeams } from '../../domain/org-resources.ts';
import { listMembers, putMember, removeMember } from '../../domain/members.ts';
import { MEMBERSHIP_ROLES } from '../../domain/organization-access.ts';
import { Nullable, OrgSlugSchema, ProjectSlugSchema, TeamSlugSchema, Timestamp, Uuid } from './api-schemas.ts';

const Role = Type.Union(MEMBERSHIP_ROLES.map((r) => Type.Literal(r)));
const OrgParams = Type.Object({ org: OrgSlugSchema });

const ProjectSchema = Type.Object({ id: Uuid, slug: ProjectSlugSchema, name: Type.String(), createdAt: Timestamp }, { additionalProperties: false });
const TeamSchema = Type.Object({ id: Uuid, slug: TeamSlugSchema, name: Type.String(), createdAt: Timestamp }, { additionalProperties: false });
const MemberSchema = Type.Object(
  {
    subject: Type.String(),
    username: Nullable(Type.String()),
    email: Nullable(Type.String()),
    role: Role,
    team: Nullable(TeamSlugSchema),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
const WorkspaceSchema = Type.Object(
  {
    id: Uuid,
    slug: OrgSlugSchema,
    name: Type.String(),
    keycloakGroup: Type.String({ description: 'Keycloak group whose members get access to the tenant namespaces.' }),
    role: Type.Union([Role, Type.Null()], { description: "The caller's role in this organization." }),
    projects: Type.Array(Type.Object({ id: Uuid, slug: ProjectSlugSchema, name: Type.String() }, { additionalProperties: false })),
    wallets: Type.Array(Type.Object({ id: Uuid, currency: Type.String({ pattern: '^[A-Z]{3}$' }) }, { additionalProperties: false }), {
      description: 'The org’s billing wallets, one per currency (GET /billing/wallets/{id}).',
    }),
    createdAt: Timestamp,
  },
  { additionalProperties: false },
);
const MIRRORED =
  "With KEYCLOAK_URL set, the change is queued for Keycloak in the same transaction (groups `/orgs/{org}` and `/orgs/{org}/{role}`, keyed by the subject as Keycloak user id) and applied in the background; the answer never waits for Keycloak.";
const newSlugged = (slug: typeof ProjectSlugSchema) => Type.Object({ slug, name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) }, { additionalProperties: false });

export function workspaceRoutes(deps: WorkspaceDeps): RouteSpec[] {
  const { sequelize } = deps;
  return [
    defineRoute({
      method: 'post',
      path: '/orgs/auto',
      operationId: 'ensureOwnWorkspace',
      summary: "The caller's own workspace: created on the first call (201), returned on every later one (200).",
      description: 'Creates the organization (slug from preferred_username or email), its default project, owners team and owner membership, and a workspace.create change.',
      tags: ['workspaces'],
      access: 'authenticated',
      idempotent: true,
      responses: { 200: { description: 'The existing workspace.', schema: WorkspaceSchema }, 201: { description: 'The new workspace.', schema: WorkspaceSchema } },
      handler: async ({ ctx, transaction }) => {
        const { workspace, created } = await transaction((tx) => ensureAutoWorkspace(deps, tx, principalOfRequest(ctx)));
        ctx.status = created ? 201 : 200;
        ctx.body = workspace;
      },
    }),
    defineRoute({
      method: 'get',
      path: '/orgs/:org',
      operationId: 'getOrganization',
      summary: 'An organization the caller is a member of.',
      tags: ['workspaces'],
      access: 'authenticated',
      params: OrgParams,
      responses: { 200: { description: 'The organization.', schema: WorkspaceSchema } },
      handler: async ({ ctx, params }) => {
        ctx.body = await getWorkspace(sequelize, undefined, principalOfRequest(ctx), params.org);
      },
    }),
    defineRoute({
      method: 'get',
      path: '/orgs/:org/projects',
      operationId: 'listProjects',
      summary: "The organization's projects.",
      tags: ['workspaces'],
      access: 'authenticated',
      params: OrgParams,
      responses: { 200: { description: 'Projects, oldest first.', schema: Type.Object({ items: Type.Array(ProjectSchema) }, { additionalProperties: false }) } },
      handler: async ({ ctx, params }) => {
        ctx.body = { items: await listProjects(sequelize, principalOfRequest(ctx), params.org) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/orgs/:org/projects',
      operationId: 'createProject',
      summary: 'Adds a project (owners and members).',
      tags: ['workspaces'],
      access: 'authenticated',
      idempotent: true,
      params: OrgParams,
      body: newSlugged(ProjectSlugSchema),
      responses: { 201: { description: 'The new project.', schema: ProjectSchema } },
      handler: async ({ ctx, params, body, transaction }) => {
        ctx.status = 201;
        ctx.body = await transaction((tx) => createProject(sequelize, tx, principalOfRequest(ctx), params.org, body));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/orgs/:org/teams',
      operationId: 'listTeams',
      summary: "The organization's teams.",
      tags: ['workspaces'],
      access: 'authenticated',
      params: OrgParams,
      responses: { 200: { description: 'Teams, oldest first.', schema: Type.Object({ items: Type.Array(TeamSchema) }, { additionalProperties: false }) } },
      handler: async ({ ctx, params }) => {
        ctx.body = { items: await listTeams(sequelize, principalOfRequest(ctx), params.org) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/orgs/:org/teams',
      operationId: 'createTeam',
      summary: 'Adds a team (owners).',
      tags: ['workspaces'],
      access: 'authenticated',
      idempotent: true,
      params: OrgParams,
      body: newSlugged(TeamSlugSchema),
      responses: { 201: { description: 'The new team.', schema: TeamSchema } },
      handler: async ({ ctx, params, body, transaction }) => {
        ctx.status = 201;
        ctx.body = await transaction((tx) => createTeam(sequelize, tx, principalOfRequest(ctx), params.org, body));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/orgs/:org/members',
      operationId: 'listMembers',
      summary: "The organization's members and their roles.",
      tags: ['workspaces'],
      access: 'authenticated',
      params: OrgParams,
      responses: { 200: { description: 'Members, oldest first.', schema: Type.Object({ items: Type.Array(MemberSchema) }, { additionalProperties: false }) } },
      handler: async ({ ctx, params }) => {
        ctx.body = { items: await listMembers(sequelize, principalOfRequest(ctx), params.org) };
      },
    }),
    defineRoute({
      method: 'post',
      path: '/orgs/:org/members',
      operationId: 'putMember',
      summary: "Adds a member by OIDC subject, or changes a member's role and team (owners).",
      description: MIRRORED,
      tags: ['workspaces'],
      access: 'authenticated',
      idempotent: true,
      params: OrgParams,
      body: Type.Object(
        { subject: Type.String({ minLength: 1, maxLength: 255 }), role: Role, team: Type.Optional(TeamSlugSchema) },
        { additionalProperties: false },
      ),
      responses: { 200: { description: 'The member, changed.', schema: MemberSchema }, 201: { description: 'The new member.', schema: MemberSchema } },
      handler: async ({ ctx, params, body, transaction }) => {
        const { member, created } = await transaction((tx) => putMember(sequelize, tx, principalOfRequest(ctx), params.org, body, deps));
        ctx.status = created ? 201 : 200;
        ctx.body = member;
      },
    }),
    defineRoute({
      method: 'delete',
      path: '/orgs/:org/members/:subject',
      operationId: 'removeMember',
      summary: 'Removes a member (owners); the last owner cannot be removed.',
      description: MIRRORED,
      tags: ['workspaces'],
      access: 'authenticated',
      idempotent: true,
      params: Type.Object({ org: OrgSlugSchema, subject: Type.String({ minLength: 1, maxLength: 255 }) }),
      responses: { 204: { description: 'Removed.' } },
      handler: async ({ ctx, params, transaction }) => {
        await transaction((tx) => removeMember(sequelize, tx, principalOfRequest(ctx), params.org, params.subject, deps));
        ctx.status = 204;
      },
    }),
  ];
}
