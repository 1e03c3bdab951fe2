import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';

/**
 * Where things live in gsv-gitops, and what generated Kubernetes and Argo CD objects are
 * called, as pure functions of validated slugs. Every path a tenant change may touch is under
 * `tenants/<org>/`; `assertInside` is the last check before a file is committed.
 *
 * Names (README "Generated names"): segments joined by `--`, which no slug contains, so a name
 * splits back into its segments one way only. Every name built for a tenant starts with a fixed
 * kind word (`app`, `apps`, `tenant`), so the kind and the segment count fix what each segment
 * is: `app--bob--x-y` (org bob, instance x-y) cannot be `app--bob-x--y` (org bob-x, instance y).
 * Namespaces need no kind word: they are the only generated namespaces, `<org>--<role>`, and no
 * platform namespace contains `--`. No platform object's name contains `--` either (a spec
 * checks templates/platform), so no tenant name can equal one. No hashes: readable, and unique
 * by construction rather than with high probability.
 */

/**
 * A slug: lowercase alphanumeric runs joined by single dashes (a DNS-1123 label with no `--`,
 * and never starting or ending with `-`), so that `--` can join slugs into names that split
 * back one way only. The same text serves JSON Schema and PostgreSQL.
 */
export const SLUG_PATTERN = '^[a-z0-9]+(-[a-z0-9]+)*$';
const SLUG = new RegExp(SLUG_PATTERN);

/** Kubernetes label values and DNS-1123 labels (namespaces) are at most 63 characters. */
export const NAME_MAX = 63;

/** What joins the segments of a generated name. */
export const NAME_SEPARATOR = '--';

/**
 * Longest slug of each kind. The budget is the longest generated name: `apps--<org>--<name>`
 * (6 + 30 + 2 + 25 = 63). Namespaces `<org>--<role>` take 30 + 2 + 16 = 48. Projects and teams
 * appear in no generated name (a project is only a label value), so they keep 40.
 */
export const SLUG_MAX = {
  org: 30,
  instanceName: 25,
  /** Roles end up in namespaces; offerings share the limit (an offering usually names its role). */
  role: 16,
  offering: 16,
  project: 40,
  team: 40,
} as const;

export type SlugKind = keyof typeof SLUG_MAX;

const SLUG_WHAT: Record<SlugKind, string> = {
  org: 'organization',
  instanceName: 'instance name',
  role: 'role',
  offering: 'offering',
  project: 'project',
  team: 'team',
};

/**
 * The JSON Schema of a slug of one kind (API requests, change payloads, the catalog): the
 * pattern, and the length that keeps every name built from it within 63 characters.
 */
export function slugSchema(kind: SlugKind) {
  return Type.String({
    maxLength: SLUG_MAX[kind],
    pattern: SLUG_PATTERN,
    description: `Lowercase letters and digits, with single "-" between them (no "--", none first or last), at most ${SLUG_MAX[kind]} characters.`,
  });
}

export class UnsafePathError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'UnsafePathError';
  }
}

export function isSlug(value: string, kind: SlugKind): boolean {
  return value.length <= SLUG_MAX[kind] && SLUG.test(value);
}

function slug(value: string, kind: SlugKind): string {
  if (!isSlug(value, kind)) {
    throw new UnsafePathError(`${SLUG_WHAT[kind]} ${JSON.stringify(value)} is not a valid slug (at most ${SLUG_MAX[kind]} of a-z, 0-9 and single "-" between them)`);
  }
  return value;
}

/**
 * Where an org's directory sits under `tenants/` (README "Repository layout"):
 *
 * - `bucketed`: `tenants/<bucket>/<org>/`, the bucket `_` and the first two hex digits of
 *   sha256(org), so 256 buckets: at 100,000 tenants about 390 orgs a bucket (GitHub's web UI
 *   and contents API stop at 1,000 entries a directory), and every commit rewrites a
 *   256-entry `tenants/` tree and one bucket instead of a tree of every tenant. A hash, not the
 *   name's first letters, so that no naming habit (every org `team-…`) fills one bucket; `_`
 *   is in no slug, so a bucket can never be read as an org.
 * - `flat`: `tenants/<org>/`, where repositories created before the bucketed layout keep their
 *   orgs until the layout migration moves them (a reviewed change like any other).
 */
export const TENANT_LAYOUTS = ['bucketed', 'flat'] as const;
export type TenantLayout = (typeof TENANT_LAYOUTS)[number];

/** The org's bucket: `_` and two lowercase hex digits. */
export function tenantBucket(org: string): string {
  return `_${createHash('sha256').update(slug(org, 'org')).digest('hex').slice(0, 2)}`;
}

export function tenantDir(org: string, layout: TenantLayout): string {
  return layout === 'bucketed' ? `tenants/${tenantBucket(org)}/${slug(org, 'org')}` : `tenants/${slug(org, 'org')}`;
}

/** The tenant's infrastructure: namespaces, quotas, policies, role bindings, AppProject. */
export function tenantBaseDir(org: string, layout: TenantLayout): string {
  return `${tenantDir(org, layout)}/base`;
}

/** One directory per instance, holding its Argo CD Application and anything beside it. */
export function instanceDir(org: string, instanceName: string, layout: TenantLayout): string {
  return `${tenantDir(org, layout)}/apps/${slug(instanceName, 'instanceName')}`;
}

/**
 * The org directory a repository path is in, in either layout; undefined for a path outside
 * every org's directory (`tenants/README.md`, a bucket itself, a bucket that is not the org's).
 */
export function tenantOfPath(path: string): { org: string; layout: TenantLayout; dir: string; rest: string[] } | undefined {
  const [top, first, second, ...more] = path.split('/');
  if (top !== 'tenants' || first === undefined) return undefined;
  if (first.startsWith('_')) {
    if (second === undefined || !isSlug(second, 'org') || tenantBucket(second) !== first) return undefined;
    return { org: second, layout: 'bucketed', dir: `tenants/${first}/${second}`, rest: more };
  }
  if (!isSlug(first, 'org') || second === undefined) return undefined;
  return { org: first, layout: 'flat', dir: `tenants/${first}`, rest: [second, ...more] };
}

function generatedName(...segments: string[]): string {
  return segments.join(NAME_SEPARATOR);
}

/** The namespace of an org's role: `<org>--<role>`. */
export function tenantNamespace(org: string, role: string): string {
  return generatedName(slug(org, 'org'), slug(role, 'role'));
}

/** The org's AppProject: `tenant--<org>` (AppProjects and Applications are different objects). */
export function tenantProject(org: string): string {
  return generatedName('tenant', slug(org, 'org'));
}

/** The instance's own Application, the file `application.yaml` in its directory: `app--<org>--<name>`. */
export function instanceApplicationName(org: string, instanceName: string): string {
  return generatedName('app', slug(org, 'org'), slug(instanceName, 'instanceName'));
}

/**
 * The Application the tenant-apps ApplicationSet makes for the instance's directory (it syncs
 * the instance's Application): `apps--<org>--<name>`. The ApplicationSet's template builds the
 * same name from the directory's path segments; a spec holds the two together.
 */
export function parentApplicationName(org: string, instanceName: string): string {
  return generatedName('apps', slug(org, 'org'), slug(instanceName, 'instanceName'));
}

/** The Application the tenant-base ApplicationSet makes for `tenants/<org>/base`: `tenant--<org>`. */
export function tenantBaseApplicationName(org: string): string {
  return generatedName('tenant', slug(org, 'org'));
}

export const PLATFORM_DIR = 'platform';

/**
 * Normalises a path relative to a directory and proves it stays inside it: no absolute
 * paths, no `..`, no empty or dot segments, no backslashes or control characters.
 */
export function joinInside(dir: string, relative: string): string {
  const segments = relative.split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..' || !/^[A-Za-z0-9._-]+$/.test(segment)) {
      throw new UnsafePathError(`path ${JSON.stringify(relative)} is not a plain relative path`);
    }
  }
  return `${dir}/${segments.join('/')}`;
}

export function assertInside(dir: string, filePath: string): void {
  if (!filePath.startsWith(`${dir}/`)) throw new UnsafePathError(`${filePath} is outside ${dir}/`);
  joinInside(dir, filePath.slice(dir.length + 1));
}
