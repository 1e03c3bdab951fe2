import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config.ts';
import { renderPlatform } from '../../src/gitops/render/change-renderer.ts';
import type { PlatformBootstrap } from '../../src/gitops/render/change-payloads.ts';
import { InvalidManifestError, validateManifest } from '../../src/gitops/render/manifest-validation.ts';
import { loadTemplateCatalog, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';
import { TemplateError } from '../../src/gitops/render/template-substitution.ts';
import { PLATFORM_BOOTSTRAP } from '../support/change-fixtures.ts';

const run = promisify(execFile);

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown> & {
    source?: { repoURL: string; path?: string; chart?: string; targetRevision: string };
    destination?: { namespace?: string };
    secretStoreRef?: { kind: string; name: string };
    template?: { spec: PodSpec };
  };
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: unknown };
  containers: { image: string }[];
  initContainers?: { image: string }[];
}

/** Every directory of platform/base/ built as Argo CD builds it (`kubectl kustomize`): directory → objects. */
async function buildPlatform(payload: PlatformBootstrap, catalog: TemplateCatalog): Promise<Map<string, Obj[]>> {
  const files = renderPlatform(catalog, payload).filter((f): f is { path: string; content: string } => 'content' in f);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-platform-roles-'));
  try {
    for (const file of files) {
      await fs.mkdir(path.dirname(path.join(root, file.path)), { recursive: true });
      await fs.writeFile(path.join(root, file.path), file.content);
    }
    const dirs = [...new Set(files.filter((f) => f.path.endsWith('/kustomization.yaml')).map((f) => path.dirname(f.path)))];
    const built = new Map<string, Obj[]>();
    for (const dir of dirs) {
      const { stdout } = await run('kubectl', ['kustomize', path.join(root, dir)], { maxBuffer: 16 * 1024 * 1024 });
      built.set(path.basename(dir), YAML.parseAllDocuments(stdout).map((d) => d.toJS() as Obj));
    }
    return built;
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

describe('platform/base/: the roles of the platform, deployed by platform-apps', function () {
  this.timeout(60_000);
  let catalog: TemplateCatalog;
  let all: Map<string, Obj[]>;
  before(async () => {
    catalog = await loadTemplateCatalog();
    all = await buildPlatform(PLATFORM_BOOTSTRAP, catalog);
  });

  it('renders every role beside the control plane: sso, vault, cms, commerce, the tenant pickup and the root of them all', () => {
    assert.deepEqual([...all.keys()].sort(), ['argocd-tenants', 'cmp-control-plane', 'cms', 'commerce', 'platform-apps', 'sso', 'vault']);
    const kinds = (dir: string) => all.get(dir)!.map((o) => `${o.kind}/${o.metadata.name}`);
    assert.ok(kinds('sso').includes('Application/keycloak'));
    assert.ok(kinds('vault').includes('Application/vault') && kinds('vault').includes('Application/external-secrets'));
    assert.ok(kinds('vault').includes(`ClusterSecretStore/${PLATFORM_BOOTSTRAP.secretStore}`), 'the store every ExternalSecret names');
    assert.ok(kinds('cms').includes('Deployment/wagtail'));
    assert.ok(kinds('commerce').includes('Deployment/saleor-api'));
  });

  it('validates every built object against its schema (Kubernetes, Argo CD, External Secrets) and refuses a misspelt store field', () => {
    let count = 0;
    for (const [dir, objects] of all) {
      for (const object of objects) {
        validateManifest(object, `${dir}/${object.kind}/${object.metadata.name}`);
        count += 1;
      }
    }
    assert.ok(count >= 40, `${count} objects`);
    const store = all.get('vault')!.find((o) => o.kind === 'ClusterSecretStore')!;
    const vault = (store.spec!.provider as { vault: Record<string, unknown> }).vault;
    const misspelt = { ...store, spec: { provider: { vault: { ...vault, sever: vault.server } } } };
    assert.throws(() => validateManifest(misspelt, 'misspelt'), (error: unknown) => error instanceof InvalidManifestError && /sever/.test(error.message));
    const badVersion = { ...store, spec: { provider: { vault: { ...vault, version: 'v3' } } } };
    assert.throws(() => validateManifest(badVersion, 'bad-version'), InvalidManifestError);
  });

  it('roots them in platform-apps: one Application per other directory, syncing exactly it, in a project that allows just what they use', () => {
    const apps = all.get('platform-apps')!;
    const root = apps.find((o) => o.kind === 'Application' && o.metadata.name === 'platform-apps')!;
    assert.equal(root.spec!.source!.path, 'platform/base/platform-apps', 'the root manages itself');
    const children = apps.filter((o) => o.kind === 'Application' && o !== root);
    assert.deepEqual(children.map((c) => c.spec!.source!.path).sort(), [...all.keys()].filter((d) => d !== 'platform-apps').map((d) => `platform/base/${d}`).sort());
    for (const app of [root, ...children]) {
      assert.equal(app.spec!.source!.repoURL, PLATFORM_BOOTSTRAP.gitopsRepoURL);
      assert.equal(app.spec!.source!.targetRevision, PLATFORM_BOOTSTRAP.baseBranch);
      assert.equal(app.spec!.project, 'platform');
    }
    const wave = (dir: string) => Number(children.find((c) => c.spec!.source!.path === `platform/base/${dir}`)!.metadata.annotations!['argocd.argoproj.io/sync-wave']);
    // The notifications ConfigMap is a server-side partial of Argo CD's own (see its comment).
    const tenants = children.find((c) => c.spec!.source!.path === 'platform/base/argocd-tenants')!;
    assert.ok(((tenants.spec!.syncPolicy as { syncOptions: string[] }).syncOptions).includes('ClientSideApplyMigration=false'));
    assert.ok(wave('vault') < wave('sso') && wave('sso') < wave('cmp-control-plane') && wave('cmp-control-plane') < wave('commerce'), 'the store before what reads it');

    const project = apps.find((o) => o.kind === 'AppProject' && o.metadata.name === 'platform')!;
    const everything = [...all.values()].flat();
    const repos = new Set(everything.filter((o) => o.kind === 'Application').map((o) => o.spec!.source!.repoURL));
    assert.deepEqual([...repos].sort(), [...(project.spec!.sourceRepos as string[])].sort());
    const allowed = new Set((project.spec!.destinations as { namespace: string }[]).map((d) => d.namespace));
    for (const o of everything) {
      for (const namespace of [o.metadata.namespace, o.kind === 'Application' ? o.spec!.destination!.namespace : undefined]) {
        if (namespace && o.kind !== 'AppProject') assert.ok(allowed.has(namespace), `${o.kind} ${o.metadata.name} in ${namespace}`);
      }
    }
  });

  it('creates the namespaces the roles deploy into, cmp among them', () => {
    const everything = [...all.values()].flat();
    const created = new Set(everything.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name));
    for (const namespace of ['cmp', 'sso', 'vault', 'external-secrets']) assert.ok(created.has(namespace), namespace);
    for (const o of everything) {
      const used = o.kind === 'Application' ? o.spec!.destination!.namespace : o.metadata.namespace;
      // Argo CD's namespace is Argo CD's own, there before the platform.
      if (used && used !== 'argocd') assert.ok(created.has(used), `${o.kind} ${o.metadata.name} uses ${used}, which nothing creates`);
    }
  });

  it('pins every chart to a version and every image to a tag, runs every pod as a numeric non-root user, and reads every secret from the one store', () => {
    const everything = [...all.values()].flat();
    for (const app of everything.filter((o) => o.kind === 'Application' && o.spec!.source!.chart)) {
      assert.match(app.spec!.source!.targetRevision, /^[0-9]+\.[0-9]+\.[0-9]+$/, `${app.metadata.name}: an exact chart version`);
    }
    for (const deployment of everything.filter((o) => o.kind === 'Deployment')) {
      const pod = deployment.spec!.template!.spec;
      for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) assert.match(container.image, /:[A-Za-z0-9._-]+$/, `${deployment.metadata.name}: ${container.image} has a tag`);
      for (const container of [...pod.containers, ...(pod.initContainers ?? [])]) assert.doesNotMatch(container.image, /:latest$/);
      assert.equal(pod.securityContext?.runAsNonRoot, true, deployment.metadata.name);
      assert.ok(Number.isInteger(pod.securityContext?.runAsUser) && Number(pod.securityContext?.runAsUser) > 0, `${deployment.metadata.name}: numeric runAsUser`);
    }
    for (const secret of everything.filter((o) => o.kind === 'ExternalSecret')) {
      assert.deepEqual(secret.spec!.secretStoreRef, { kind: 'ClusterSecretStore', name: PLATFORM_BOOTSTRAP.secretStore }, secret.metadata.name);
    }
  });

  it("runs Keycloak with the realm the control plane trusts: its issuer, its audience, its admin role", () => {
    const keycloak = all.get('sso')!.find((o) => o.kind === 'Application' && o.metadata.name === 'keycloak')!;
    const values = (keycloak.spec!.source as unknown as { helm: { valuesObject: { command: string[]; http: { relativePath: string }; extraVolumeMounts: string } } }).helm.valuesObject;
    assert.ok(values.command.includes(`--hostname=https://${PLATFORM_BOOTSTRAP.ssoHost}`) && values.command.includes('--import-realm'));
    assert.equal(values.http.relativePath, '/', 'realms at /realms/<name>, not /auth/realms/<name>');
    const mount = (YAML.parse(values.extraVolumeMounts) as { name: string; mountPath: string }[])[0]!;
    assert.equal(mount.mountPath, '/opt/keycloak/data/import', 'where --import-realm reads');
    const realmMap = all.get('sso')!.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'keycloak-realm') as unknown as { data: Record<string, string> };
    const realm = JSON.parse(realmMap.data['gsv-realm.json']!) as { realm: string; roles: { realm: { name: string }[] }; clients: { protocolMappers?: { protocolMapper: string; config: Record<string, string> }[] }[] };
    const env = (all.get('cmp-control-plane')!.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> }).data;
    assert.equal(env.OIDC_ISSUER, `https://${PLATFORM_BOOTSTRAP.ssoHost}/realms/${realm.realm}`);
    const audiences = realm.clients.flatMap((c) => (c.protocolMappers ?? []).filter((m) => m.protocolMapper === 'oidc-audience-mapper').map((m) => m.config['included.client.audience']));
    assert.deepEqual(audiences, [env.OIDC_AUDIENCE]);
    const adminRole = CONFIG_VARIABLES.find((v) => v.name === 'OIDC_ADMIN_ROLE')!.default;
    assert.ok(realm.roles.realm.some((r) => r.name === adminRole), `the realm defines ${adminRole}`);
  });

  it("defines in the realm the membership mirror's confidential client, its service account's realm-management roles, and full group paths in the sign-in client's tokens", () => {
    const realmMap = all.get('sso')!.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'keycloak-realm') as unknown as { data: Record<string, string> };
    interface Client { clientId: string; publicClient: boolean; secret?: string; serviceAccountsEnabled?: boolean; standardFlowEnabled: boolean; directAccessGrantsEnabled: boolean; protocolMappers?: { protocolMapper: string; config: Record<string, string> }[] }
    const realm = JSON.parse(realmMap.data['gsv-realm.json']!) as { clients: Client[]; users: { username: string; serviceAccountClientId?: string; clientRoles?: Record<string, string[]> }[] };
    const env = (all.get('cmp-control-plane')!.find((o) => o.kind === 'ConfigMap') as unknown as { data: Record<string, string> }).data;
    assert.equal(env.KEYCLOAK_URL, `https://${PLATFORM_BOOTSTRAP.ssoHost}`);
    assert.equal(env.KEYCLOAK_REALM, 'gsv');
    assert.equal(env.SALEOR_API_URL, `https://${PLATFORM_BOOTSTRAP.commerceHost}/graphql/`);
    const mirror = realm.clients.find((c) => c.clientId === env.KEYCLOAK_CLIENT_ID);
    assert.ok(mirror, `the realm defines ${env.KEYCLOAK_CLIENT_ID}`);
    assert.equal(mirror.publicClient, false, 'confidential: the client credentials grant needs a secret');
    assert.equal(mirror.serviceAccountsEnabled, true);
    assert.equal(mirror.standardFlowEnabled, false, 'nobody signs in with it');
    assert.equal(mirror.directAccessGrantsEnabled, false);
    // The secret is Keycloak's environment at import, never a value in Git.
    const placeholder = /^\$\{([A-Z_][A-Z0-9_]*)\}$/.exec(mirror.secret ?? '');
    assert.ok(placeholder, `secret ${mirror.secret} is a placeholder`);
    const keycloakSecret = all.get('sso')!.find((o) => o.kind === 'ExternalSecret' && o.metadata.name === 'keycloak')!;
    const fromStore = (keycloakSecret.spec!.data as { secretKey: string; remoteRef: { key: string; property: string } }[]).find((d) => d.secretKey === placeholder[1]);
    assert.deepEqual(fromStore?.remoteRef, { key: 'cmp/control-plane', property: 'keycloak-client-secret' }, "the same store value the control plane's ExternalSecret reads");
    const controlPlaneSecret = all.get('cmp-control-plane')!.find((o) => o.kind === 'ExternalSecret' && o.metadata.name === 'cmp-control-plane')!;
    const secretKeys = controlPlaneSecret.spec!.data as { secretKey: string; remoteRef: { key: string; property: string } }[];
    assert.deepEqual(secretKeys.find((d) => d.secretKey === 'KEYCLOAK_CLIENT_SECRET')?.remoteRef, fromStore.remoteRef);
    const account = realm.users.filter((u) => u.serviceAccountClientId === mirror.clientId);
    assert.equal(account.length, 1, 'one service account, linked to the client by clientId');
    assert.equal(account[0]!.username, `service-account-${mirror.clientId}`);
    assert.deepEqual([...account[0]!.clientRoles!['realm-management']!].sort(), ['manage-users', 'query-groups', 'view-users']);
    const signIn = realm.clients.find((c) => c.clientId === env.OIDC_AUDIENCE)!;
    const groups = signIn.protocolMappers!.filter((m) => m.protocolMapper === 'oidc-group-membership-mapper');
    assert.equal(groups.length, 1);
    assert.deepEqual(groups[0]!.config, { 'claim.name': 'groups', 'full.path': 'true', 'access.token.claim': 'true', 'id.token.claim': 'true', 'userinfo.token.claim': 'true' });
    const saleorSecret = all.get('cmp-control-plane')!.find((o) => o.kind === 'ExternalSecret' && o.metadata.name === 'cmp-control-plane-saleor')!;
    assert.deepEqual(saleorSecret.spec!.data, [{ secretKey: 'SALEOR_APP_TOKEN', remoteRef: { key: 'cmp/control-plane', property: 'saleor-app-token' } }]);
  });

  it('leaves out what a site already has: an existing Keycloak and store render no sso and no vault, and nothing names them', async () => {
    const site = await buildPlatform({ ...PLATFORM_BOOTSTRAP, without: ['sso', 'vault'], secretStore: 'site-store' }, catalog);
    assert.deepEqual([...site.keys()].sort(), ['argocd-tenants', 'cmp-control-plane', 'cms', 'commerce', 'platform-apps']);
    const everything = [...site.values()].flat();
    assert.ok(!everything.some((o) => o.kind === 'ClusterSecretStore' || ['keycloak', 'vault', 'external-secrets', 'platform-sso', 'platform-vault'].includes(o.metadata.name)));
    const project = site.get('platform-apps')!.find((o) => o.kind === 'AppProject')!;
    assert.deepEqual(project.spec!.sourceRepos, [PLATFORM_BOOTSTRAP.gitopsRepoURL]);
    for (const secret of everything.filter((o) => o.kind === 'ExternalSecret')) assert.equal(secret.spec!.secretStoreRef!.name, 'site-store');
    const configMap = site.get('cmp-control-plane')!.find((o) => o.kind === 'ConfigMap')!;
    assert.equal((configMap as unknown as { data: Record<string, string> }).data.OIDC_ISSUER, PLATFORM_BOOTSTRAP.oidc.issuer);
    // No --keycloak-url: the mirror is off, and no client secret is asked of the store.
    assert.ok(!('KEYCLOAK_URL' in (configMap as unknown as { data: Record<string, string> }).data));
    const controlPlaneSecret = site.get('cmp-control-plane')!.find((o) => o.kind === 'ExternalSecret' && o.metadata.name === 'cmp-control-plane')!;
    assert.ok(!(controlPlaneSecret.spec!.data as { secretKey: string }[]).some((d) => d.secretKey === 'KEYCLOAK_CLIENT_SECRET'));
  });

  it('refuses to render a role without its settings', () => {
    const { ssoHost: _ssoHost, cmsImage: _cmsImage, ...bare } = PLATFORM_BOOTSTRAP;
    assert.throws(() => renderPlatform(catalog, bare), (error: unknown) => error instanceof TemplateError && /sso is rendered but ssoHost is not set; cms is rendered but cmsImage is not set/.test(error.message));
    assert.doesNotThrow(() => renderPlatform(catalog, { ...bare, without: ['sso', 'cms'] }));
  });
});
