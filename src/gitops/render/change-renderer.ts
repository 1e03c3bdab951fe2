import type { FileChange } from '../repository.ts';
import { instanceApplicationName, instanceDir, joinInside, assertInside, tenantBaseDir, tenantDir, tenantNamespace, tenantProject, PLATFORM_DIR, type TenantLayout } from '../tenant-paths.ts';
import { INSTANCE_SPEC_ANNOTATION, specAnnotation } from '../instance-spec.ts';
import { INSTANCE_ID_LABEL, MANAGED_BY_LABELS, OFFERING_LABEL, OFFERING_VERSION_LABEL, ORG_LABEL, PROJECT_LABEL } from '../labels.ts';
import { parseManifest, serializeManifest } from './manifest-serialization.ts';
import { validateManifest } from './manifest-validation.ts';
import { contradictingPlatformSettings, missingPlatformSettings, platformVariables, PLATFORM_APPS_DIR, PLATFORM_SYNC_OPTIONS, PLATFORM_SYNC_WAVES, rendersPlatformDir, rendersPlatformFile } from './platform-variables.ts';
import { substitute, TemplateError, type Variables } from './template-substitution.ts';
import type { TemplateCatalog, TemplateFile } from './template-catalog.ts';
import type { InstanceDelete, InstanceUpdate, InstanceWrite, ParsedChange, PlatformBootstrap, TenantRelayout, WorkspaceCreate } from './change-payloads.ts';

/**
 * Files a change writes or removes. Pure: the same change, catalog and layout give the same
 * bytes. `layout` is where the change's org sits in the repository when it is published
 * (tenant-paths.ts), not when it was asked for: a layout migration may have moved it since.
 */
export function renderChange(
  catalog: TemplateCatalog,
  change: ParsedChange,
  context: { instanceId?: string; layout: TenantLayout; /** For tenants.relayout: what main holds in each org's flat directory. */ onMain?: Map<string, Map<string, string>> },
): FileChange[] {
  switch (change.kind) {
    case 'workspace.create':
      return renderWorkspace(catalog, change.payload, context.layout);
    case 'instance.create':
      return renderInstance(catalog, change.payload, requireInstanceId(change.kind, context), context.layout);
    case 'instance.update':
      return renderInstanceUpdate(catalog, change.payload, requireInstanceId(change.kind, context), context.layout);
    case 'instance.delete':
      return renderInstanceRemoval(change.payload, context.layout);
    case 'platform.bootstrap':
      return renderPlatform(catalog, change.payload);
    case 'tenants.relayout':
      return renderRelayout(change.payload, context.onMain ?? new Map());
  }
}

/**
 * Every file main holds under an org's flat directory, removed there and written at the same
 * place below its bucketed one (file by file: GitHub deletes no directory). An org with nothing
 * under its flat directory (moved already) contributes nothing; a change that moves nothing is
 * refused.
 */
export function renderRelayout(payload: TenantRelayout, onMain: Map<string, Map<string, string>>): FileChange[] {
  const out: FileChange[] = [];
  for (const org of payload.orgs) {
    const from = tenantDir(org, 'flat');
    const to = tenantDir(org, 'bucketed');
    for (const [path, content] of onMain.get(from) ?? []) {
      assertInside(from, path);
      const moved = joinInside(to, path.slice(from.length + 1));
      out.push({ path, delete: true }, { path: moved, content });
    }
  }
  if (out.length === 0) throw new TemplateError(`nothing to move: main holds none of ${payload.orgs.slice(0, 5).join(', ')}${payload.orgs.length > 5 ? ', …' : ''} at tenants/<org>/`);
  return sortByPath(out);
}

function requireInstanceId(kind: string, context: { instanceId?: string }): string {
  if (!context.instanceId) throw new TemplateError(`${kind} needs the instance id`);
  return context.instanceId;
}

export function renderWorkspace(catalog: TemplateCatalog, payload: WorkspaceCreate, layout: TenantLayout): FileChange[] {
  const dir = tenantBaseDir(payload.org, layout);
  const labels = { ...MANAGED_BY_LABELS, [ORG_LABEL]: payload.org };
  const common: Variables = {
    org: payload.org,
    orgName: payload.orgName,
    keycloakGroup: payload.keycloakGroup,
    project: tenantProject(payload.org),
    sourceRepos: catalog.sourceRepos,
    destinations: catalog.roles.map((role) => ({ server: 'https://kubernetes.default.svc', namespace: tenantNamespace(payload.org, role) })),
  };
  const files = renderFiles(catalog.tenantBase, common, labels);
  for (const role of catalog.roles) {
    const perRole = renderFiles(catalog.tenantRole, { ...common, role, namespace: tenantNamespace(payload.org, role) }, labels);
    files.push(...perRole.map((file) => ({ ...file, path: `${role}/${file.path}` })));
  }
  return withKustomization(dir, files, tenantDir(payload.org, layout));
}

export function renderInstance(catalog: TemplateCatalog, payload: InstanceWrite, instanceId: string, layout: TenantLayout): FileChange[] {
  const offering = catalog.offerings.get(payload.templatePath);
  if (!offering) throw new TemplateError(`no templates at ${payload.templatePath}`);
  if (offering.slug !== payload.offering || offering.role !== payload.role || offering.version !== payload.version) {
    throw new TemplateError(`${payload.templatePath} is ${offering.slug}/${offering.role} ${offering.version}, not ${payload.offering}/${payload.role} ${payload.version}`);
  }
  const parameters = structuredClone(payload.parameters);
  if (!offering.validateParameters(parameters)) {
    const detail = offering.validateParameters.errors!.map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new TemplateError(`parameters do not match ${payload.templatePath}/parameters.schema.json: ${detail}`);
  }
  const preset: Record<string, unknown> = {};
  for (const [name, table] of Object.entries(offering.presets)) {
    const key = String(parameters[name]);
    if (!Object.hasOwn(table, key)) throw new TemplateError(`presets.yaml has no ${name} entry for ${JSON.stringify(key)}`);
    preset[name] = table[key];
  }
  const variables: Variables = {
    org: payload.org,
    project: payload.project,
    instanceName: payload.instanceName,
    instanceId,
    offering: payload.offering,
    role: payload.role,
    version: payload.version,
    namespace: tenantNamespace(payload.org, payload.role),
    appProject: tenantProject(payload.org),
    // Application names share the argocd namespace with every tenant's and the platform's.
    applicationName: instanceApplicationName(payload.org, payload.instanceName),
    parameters,
    preset,
  };
  const labels = {
    ...MANAGED_BY_LABELS,
    [ORG_LABEL]: payload.org,
    [PROJECT_LABEL]: payload.project,
    [INSTANCE_ID_LABEL]: instanceId,
    [OFFERING_LABEL]: payload.offering,
    [OFFERING_VERSION_LABEL]: payload.version,
  };
  // The spec this directory holds, read back by convergence once it is on the base branch.
  const annotations = { [INSTANCE_SPEC_ANNOTATION]: specAnnotation({ offering: payload.offering, version: payload.version, parameters }) };
  const dir = instanceDir(payload.org, payload.instanceName, layout);
  return withKustomization(dir, renderFiles(offering.files, variables, labels, annotations), tenantDir(payload.org, layout));
}

/**
 * The new version's files, and the removal of what the previous version had that the new one
 * lacks. The paths a version renders depend only on its template file names, so the previous
 * version's paths come from the catalog alone: per-file deletes, no read of the repository.
 * When the previous version is unknown (an update queued before payloads named it, or a
 * version no longer in the catalog), the directory is deleted before the writes, which every
 * driver applies as a replace: afterwards the directory holds exactly the new files.
 */
export function renderInstanceUpdate(catalog: TemplateCatalog, payload: InstanceUpdate, instanceId: string, layout: TenantLayout): FileChange[] {
  const { previousTemplatePath, ...current } = payload;
  const files = renderInstance(catalog, current, instanceId, layout);
  const dir = instanceDir(payload.org, payload.instanceName, layout);
  const previous = previousTemplatePath === undefined ? undefined : catalog.offerings.get(previousTemplatePath);
  const written = new Set(files.map((file) => file.path));
  const removals: FileChange[] = previous
    ? placedPaths(dir, previous.files.map((file) => file.path), tenantDir(payload.org, layout))
        .filter((path) => !written.has(path))
        .map((path) => ({ path, delete: true }))
    : [{ path: dir, delete: true, directory: true }];
  // A directory sorts before everything under it, so a whole-directory delete comes first.
  return sortByPath([...removals, ...files]);
}

/** Deprovisioning removes the instance's directory; Argo CD prunes what it deployed. */
export function renderInstanceRemoval(payload: InstanceDelete, layout: TenantLayout): FileChange[] {
  return [{ path: instanceDir(payload.org, payload.instanceName, layout), delete: true, directory: true }];
}

/**
 * platform/base/<dir>/ for every directory of templates/platform/ the payload renders (the
 * roles a site left out are not), and platform/base/platform-apps/: the root Application, the
 * platform's AppProject (confined to the repositories and namespaces the others use), and an
 * Application per other directory.
 */
export function renderPlatform(catalog: TemplateCatalog, payload: PlatformBootstrap): FileChange[] {
  const missing = missingPlatformSettings(payload);
  if (missing.length > 0) {
    throw new TemplateError(`platform.bootstrap: ${missing.map((m) => `${m.component} is rendered but ${m.field} is not set`).join('; ')} (or leave the role out with without)`);
  }
  const contradicting = contradictingPlatformSettings(payload);
  if (contradicting.length > 0) {
    throw new TemplateError(`platform.bootstrap: ${contradicting.map((m) => `${m.component} is rendered, which defines ${m.field} itself`).join('; ')} (give ${contradicting.map((m) => m.field).join(', ')} only with the role left out)`);
  }
  const variables = platformVariables(payload);
  const labels = { ...MANAGED_BY_LABELS };
  const dirs = [...catalog.platform.keys()].filter((dir) => dir !== PLATFORM_APPS_DIR && rendersPlatformDir(payload, dir)).sort();
  const rendered = new Map(dirs.map((dir) => [dir, renderFiles(catalog.platform.get(dir)!.filter((t) => rendersPlatformFile(payload, dir, t.path)), variables, labels)]));
  const objects = [...rendered.values()].flat().map((file) => parseManifest(file.content) as PlatformObject);
  const sourceRepos = new Set([payload.gitopsRepoURL, ...objects.flatMap((o) => (o.kind === 'Application' && o.spec?.source?.repoURL ? [o.spec.source.repoURL] : []))]);
  const namespaces = new Set(['argocd', ...objects.flatMap((o) => [o.metadata.namespace, o.kind === 'Namespace' ? o.metadata.name : undefined, o.spec?.destination?.namespace])]);
  namespaces.delete(undefined);
  const applications = dirs.map((dir) => {
    const [file] = renderFiles([catalog.platformApplication], { ...variables, component: dir, syncWave: String(PLATFORM_SYNC_WAVES[dir] ?? 0), syncOptions: PLATFORM_SYNC_OPTIONS[dir] ?? [] }, labels);
    return { ...file!, path: `application-platform-${dir}.yaml` };
  });
  const platformApps = renderFiles(
    catalog.platform.get(PLATFORM_APPS_DIR) ?? [],
    {
      ...variables,
      platformSourceRepos: [...sourceRepos].sort(),
      platformDestinations: [...namespaces].sort().map((namespace) => ({ server: 'https://kubernetes.default.svc', namespace })),
    },
    labels,
  );
  const out: FileChange[] = withKustomization(`${PLATFORM_DIR}/base/${PLATFORM_APPS_DIR}`, [...platformApps, ...applications], PLATFORM_DIR);
  for (const [dir, files] of rendered) out.push(...withKustomization(`${PLATFORM_DIR}/base/${dir}`, files, PLATFORM_DIR));
  return sortByPath(out);
}

interface PlatformObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { source?: { repoURL?: string }; destination?: { namespace?: string } };
}

interface RenderedFile {
  path: string;
  content: string;
}

function renderFiles(templates: TemplateFile[], variables: Variables, labels: Record<string, string>, annotations: Record<string, string> = {}): RenderedFile[] {
  return templates.map((template) => {
    const object = substitute(template.document, variables, template.path) as Record<string, unknown>;
    const metadata = (object.metadata ??= {}) as Record<string, unknown>;
    metadata.labels = { ...(metadata.labels as Record<string, string> | undefined), ...labels };
    if (Object.keys(annotations).length > 0) metadata.annotations = { ...(metadata.annotations as Record<string, string> | undefined), ...annotations };
    validateManifest(object, template.path);
    return { path: template.path, content: serializeManifest(object) };
  });
}

/** Places files under `dir`, adds the kustomization that lists them, proves nothing leaves `root`. */
function withKustomization(dir: string, files: RenderedFile[], root: string): FileChange[] {
  const names = files.map((file) => file.path);
  const kustomization = serializeManifest({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: [...names].sort() });
  const contents = [...files.map((file) => file.content), kustomization];
  return sortByPath(placedPaths(dir, names, root).map((path, index) => ({ path, content: contents[index]! })));
}

/** Where withKustomization puts files named `names`, then their kustomization; each proved to stay inside `root`. */
function placedPaths(dir: string, names: string[], root: string): string[] {
  return [...names, 'kustomization.yaml'].map((name) => {
    const path = joinInside(dir, name);
    assertInside(root, path);
    return path;
  });
}

function sortByPath<T extends { path: string }>(files: T[]): T[] {
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
