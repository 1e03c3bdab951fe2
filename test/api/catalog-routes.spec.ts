import { QueryTypes } from 'sequelize';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { seedCatalog } from '../../src/domain/catalog-seed.ts';
import { startApiHarness, uniqueUser, type ApiHarness } from '../support/api-harness.ts';
import { useSpecDatabase } from '../support/database.ts';

describe('catalog', () => {
  useSpecDatabase();
  let api: ApiHarness;
  let admin: string;
  let user: string;
  let dir: string;
  before(async () => {
    api = await startApiHarness();
    admin = await api.tokenFor(uniqueUser('admin', { platformAdmin: true }));
    user = await api.tokenFor(uniqueUser('shopper'));
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'offerings-'));
  });
  after(async () => {
    await api.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const slug = () => `c${Date.now().toString(36).slice(-7)}${Math.floor(Math.random() * 36).toString(36)}`;
  const schema = { type: 'object', additionalProperties: false, properties: { replicas: { type: 'integer', minimum: 1, default: 1 } } };
  const pricing = { currency: 'EUR', setupFee: 100, hourlyRate: 3 };

  async function writeOffering(name: string, version: string, parameters: object = schema): Promise<void> {
    await fs.mkdir(path.join(dir, name, version), { recursive: true });
    await fs.writeFile(path.join(dir, name, 'offering.yaml'), `slug: ${name}\nrole: studio\nname: Lab ${name}\ndescription: A test offering.\n`);
    await fs.writeFile(path.join(dir, name, version, 'version.yaml'), `version: ${version}\nstatus: active\npricing:\n  currency: EUR\n  setupFee: 250\n  hourlyRate: 4\n`);
    await fs.writeFile(path.join(dir, name, version, 'parameters.schema.json'), JSON.stringify(parameters));
  }

  it('serves the shipped catalog: studio, runtime and rag, each with an active version, with schemas whose every parameter has a default', async () => {
    const list = await api.call('GET', '/offerings', { token: user });
    assert.equal(list.status, 200);
    const offerings = list.body.items as { slug: string; role: string; versions: { version: string; status: string; parametersSchema: { properties: Record<string, object>; additionalProperties: boolean }; pricing: { setupFee: number } }[] }[];
    for (const [name, role] of [['studio', 'studio'], ['runtime', 'runtime'], ['rag', 'rag']]) {
      const offering = offerings.find((o) => o.slug === name);
      assert.ok(offering, name);
      assert.equal(offering.role, role);
      assert.ok(offering.versions.some((v) => v.version === '1.0.0'), `${name}@1.0.0`);
      assert.ok(offering.versions.some((v) => v.status === 'active'), `${name} has an active version`);
      for (const version of offering.versions) {
        assert.equal(version.parametersSchema.additionalProperties, false);
        assert.ok(Object.keys(version.parametersSchema.properties).length > 0);
        for (const [parameter, property] of Object.entries(version.parametersSchema.properties)) assert.ok('default' in property, `${name}@${version.version}.${parameter}`);
        assert.ok(Number.isInteger(version.pricing.setupFee));
      }
    }
    const one = await api.call('GET', '/offerings/rag', { token: user });
    assert.equal(one.status, 200);
    assert.equal((await api.call('GET', '/offerings/nosuch', { token: user })).status, 404);
  });

  it('seeds idempotently, without clobbering statuses or versions added through the API', async () => {
    const name = 'publish-demo'; // test/fixtures/offerings has the templates of the version published below
    await writeOffering(name, '1.0.0');
    assert.deepEqual((await seedCatalog(api.sequelize, dir)).insertedVersions.filter((v) => v.startsWith(name)), [`${name}@1.0.0`]);
    assert.equal((await api.call('PATCH', `/offerings/${name}/versions/1.0.0`, { token: admin, body: { status: 'retired' } })).status, 200);
    assert.equal((await api.call('POST', `/offerings/${name}/versions`, { token: admin, body: { version: '1.1.0', parametersSchema: schema, pricing } })).status, 201);

    const again = await seedCatalog(api.sequelize, dir);
    assert.deepEqual(again.insertedVersions.filter((v) => v.startsWith(name)), []);
    const offering = await api.call('GET', `/offerings/${name}`, { token: user });
    assert.deepEqual((offering.body.versions as { version: string; status: string }[]).map((v) => [v.version, v.status]), [['1.1.0', 'active'], ['1.0.0', 'retired']]);
    assert.deepEqual((offering.body.versions as { pricing: object }[])[1]!.pricing, { currency: 'EUR', setupFee: 250, hourlyRate: 4 });
  });

  it("seeds a version's own progress deadline from version.yaml (the shipped rag 1.1.0 sets 1800 s)", async () => {
    const name = slug();
    await writeOffering(name, '1.0.0');
    await fs.appendFile(path.join(dir, name, '1.0.0', 'version.yaml'), 'progressDeadlineSeconds: 120\n');
    await seedCatalog(api.sequelize, dir);
    const deadline = async (offering: string, version: string) =>
      (
        await api.sequelize.query<{ seconds: number | null }>(
          'SELECT v.progress_deadline_seconds AS seconds FROM offering_versions v JOIN offerings f ON f.id = v.offering_id WHERE f.slug = :offering AND v.version = :version',
          { type: QueryTypes.SELECT, replacements: { offering, version } },
        )
      )[0]?.seconds;
    assert.equal(await deadline(name, '1.0.0'), 120);
    assert.equal(await deadline('rag', '1.1.0'), 1800);
    assert.equal(await deadline('studio', '2.0.0'), null, 'no deadline of its own: the default applies');
  });

  it('refuses to seed a version whose parameters lack a default, naming the folder', async () => {
    const name = slug();
    await writeOffering(name, '1.0.0', { type: 'object', additionalProperties: false, properties: { size: { type: 'string' } } });
    await assert.rejects(seedCatalog(api.sequelize, dir), (error: Error) => {
      assert.match(error.message, new RegExp(`${name}/1\\.0\\.0: /parametersSchema property "size" must have a default`));
      return true;
    });
    await fs.rm(path.join(dir, name), { recursive: true });
  });

  it('lets platform admins publish versions, checked for semver and a usable schema', async () => {
    const name = 'publish-lab'; // a fixture offering: its 1.0.0 renders
    const created = await api.call('POST', '/offerings', { token: admin, body: { slug: name, role: 'studio', name: 'Lab', description: 'Admin-made.' } });
    assert.equal(created.status, 201);
    assert.deepEqual(created.body.versions, []);
    assert.equal((await api.call('POST', '/offerings', { token: admin, body: { slug: name, role: 'studio', name: 'Lab', description: 'Again.' } })).status, 409);

    const cases: [string, object, string][] = [
      ['not semver', { version: '1.0.x', parametersSchema: schema, pricing }, '/version'],
      ['not a JSON Schema', { version: '1.0.0', parametersSchema: { type: 'object', additionalProperties: false, properties: { a: { type: 'nonsense', default: 1 } } }, pricing }, '/parametersSchema'],
      ['a parameter without default', { version: '1.0.0', parametersSchema: { type: 'object', additionalProperties: false, properties: { a: { type: 'string' } } }, pricing }, '/parametersSchema'],
      ['open to unknown fields', { version: '1.0.0', parametersSchema: { type: 'object', properties: {} }, pricing }, '/parametersSchema'],
      ['a setup fee past 2^53 − 1', { version: '1.0.0', parametersSchema: schema, pricing: { ...pricing, setupFee: 2 ** 63 } }, '/pricing/setupFee'],
      ['an hourly rate past 2^53 − 1', { version: '1.0.0', parametersSchema: schema, pricing: { ...pricing, hourlyRate: Number.MAX_SAFE_INTEGER + 1 } }, '/pricing/hourlyRate'],
      ['defaults that fail the schema', { version: '1.0.0', parametersSchema: { type: 'object', additionalProperties: false, properties: { n: { type: 'integer', minimum: 5, default: 1 } } }, pricing }, '/parametersSchema'],
    ];
    for (const [label, body, pointer] of cases) {
      const response = await api.call('POST', `/offerings/${name}/versions`, { token: admin, body });
      assert.equal(response.status, 422, label);
      assert.ok((response.body.errors as { pointer: string }[]).every((e) => e.pointer === pointer), label);
    }
    const offering = await api.call('GET', `/offerings/${name}`, { token: user });
    assert.deepEqual(offering.body.versions, [], 'refused versions are not stored');

    const added = await api.call('POST', `/offerings/${name}/versions`, { token: admin, body: { version: '1.0.0', parametersSchema: schema, pricing } });
    assert.equal(added.status, 201);
    assert.equal(added.body.templatePath, `templates/offerings/${name}/1.0.0`);
    assert.equal((await api.call('POST', `/offerings/${name}/versions`, { token: admin, body: { version: '1.0.0', parametersSchema: schema, pricing } })).status, 409);
    assert.equal((await api.call('POST', `/offerings/nosuch/versions`, { token: admin, body: { version: '1.0.0', parametersSchema: schema, pricing } })).status, 404);
    assert.equal((await api.call('POST', `/offerings/${name}/versions`, { token: user, body: { version: '2.0.0', parametersSchema: schema, pricing } })).status, 403);
    const deprecated = await api.call('PATCH', `/offerings/${name}/versions/1.0.0`, { token: admin, body: { status: 'deprecated' } });
    assert.equal(deprecated.body.status, 'deprecated');
    assert.equal((await api.call('PATCH', `/offerings/${name}/versions/9.0.0`, { token: admin, body: { status: 'retired' } })).status, 404);
  });

  it('refuses to publish a version this build cannot render, so it never becomes the default', async () => {
    const make = async (name: string) => assert.equal((await api.call('POST', '/offerings', { token: admin, body: { slug: name, role: 'studio', name, description: 'Render checks.' } })).status, 201);
    const publish = (name: string, extra: object = {}) => api.call('POST', `/offerings/${name}/versions`, { token: admin, body: { version: '1.0.0', parametersSchema: schema, pricing, ...extra } });
    const refused = async (label: string, name: string, extra: object, pointer: string, message: RegExp) => {
      const response = await publish(name, extra);
      assert.equal(response.status, 422, `${label}: ${JSON.stringify(response.body)}`);
      const [error] = response.body.errors as { pointer: string; message: string }[];
      assert.equal(error!.pointer, pointer, label);
      assert.match(error!.message, message, label);
    };
    const nowhere = slug();
    await make(nowhere);
    await refused('no template folder', nowhere, {}, '/version', new RegExp(`templates/offerings/${nowhere}/1\\.0\\.0 is not in this build's templates`));
    await refused("another offering's folder", nowhere, { templatePath: 'templates/offerings/runtime/1.0.0' }, '/templatePath', /does not render/);
    await make('publish-broken');
    await refused('a template that does not render', 'publish-broken', {}, '/version', /noSuchVariable\} does not name a known value/);

    // Nothing was stored, so ordering the offering says it has no version instead of failing later in the worker.
    for (const name of [nowhere, 'publish-broken']) assert.deepEqual((await api.call('GET', `/offerings/${name}`, { token: user })).body.versions, [], name);
    const [row] = await api.sequelize.query("SELECT count(*)::int AS n FROM offering_versions v JOIN offerings o ON o.id = v.offering_id WHERE o.slug IN (:slugs)", { type: QueryTypes.SELECT, replacements: { slugs: [nowhere, 'publish-broken'] } });
    assert.deepEqual(row, { n: 0 });
  });
});
