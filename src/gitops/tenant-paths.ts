/**
 * Where things live in gsv-gitops, as pure functions of validated slugs. Every path a tenant
 * change may touch is under `tenants/<org>/`; `assertTenantPath` is the last check before a
 * file is committed.
 */
export const SLUG = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
/** Offering slugs and roles are shorter (they end up inside namespace names). */
export const SHORT_SLUG = /^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/;

export class UnsafePathError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'UnsafePathError';
  }
}

function slug(value: string, what: string, pattern = SLUG): string {
  if (!pattern.test(value)) throw new UnsafePathError(`${what} ${JSON.stringify(value)} is not a valid slug`);
  return value;
}

export function tenantDir(org: string): string {
  return `tenants/${slug(org, 'organization')}`;
}

/** The tenant's infrastructure: namespaces, quotas, policies, role bindings, AppProject. */
export function tenantBaseDir(org: string): string {
  return `${tenantDir(org)}/base`;
}

/** One directory per instance, holding its Argo CD Application and anything beside it. */
export function instanceDir(org: string, instanceName: string): string {
  return `${tenantDir(org)}/apps/${slug(instanceName, 'instance name')}`;
}

/** The namespace of an org's role: `<org>-<role>` (at most 40 + 1 + 16 = 57 characters). */
export function tenantNamespace(org: string, role: string): string {
  return `${slug(org, 'organization')}-${slug(role, 'role', SHORT_SLUG)}`;
}

export function tenantProject(org: string): string {
  return `tenant-${slug(org, 'organization')}`;
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
