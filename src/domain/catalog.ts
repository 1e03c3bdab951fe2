import semver from 'semver';
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize';
import { ConflictError, NotFoundError, UnprocessableError, ValidationError } from '../errors.ts';
import { checkParametersSchema, freshAjv } from './parameters-schema.ts';
import { renderInstance } from '../gitops/render/change-renderer.ts';
import type { TemplateCatalog } from '../gitops/render/template-catalog.ts';
import { TemplateError } from '../gitops/render/template-substitution.ts';
import { InvalidManifestError } from '../gitops/render/manifest-validation.ts';
import { isExactMinor, MAX_MINOR } from './billing/ledger.ts';

export type VersionStatus = 'active' | 'deprecated' | 'retired';

export interface Pricing {
  currency: string;
  /** Integer minor units of `currency`. */
  setupFee: number;
  hourlyRate: number;
}

export interface OfferingVersion {
  version: string;
  status: VersionStatus;
  templatePath: string;
  parametersSchema: Record<string, unknown>;
  pricing: Pricing;
  createdAt: string;
}

export interface Offering {
  slug: string;
  role: string;
  name: string;
  description: string;
  /** At most this many live instances per workspace, and why; null: no limit. */
  instancesPerWorkspace: { max: number; why: string } | null;
  /** Newest first (semver order). */
  versions: OfferingVersion[];
}

export interface NewOffering {
  slug: string;
  role: string;
  name: string;
  description: string;
}

export interface NewOfferingVersion {
  version: string;
  status?: VersionStatus;
  parametersSchema: Record<string, unknown>;
  pricing: Pricing;
  /** Defaults to templates/offerings/<slug>/<version>. */
  templatePath?: string;
  /** How long a merged change may take to become ready; INSTANCE_PROGRESS_DEADLINE_SECONDS when unset. */
  progressDeadlineSeconds?: number;
}

interface VersionRow {
  id: string;
  slug: string;
  version: string;
  status: VersionStatus;
  template_path: string;
  parameters_schema: Record<string, unknown>;
  currency: string;
  setup_fee_minor: string;
  hourly_rate_minor: string;
  created_at: Date;
}

const SELECT_VERSIONS = `SELECT v.id, o.slug, v.version, v.status, v.template_path, v.parameters_schema, v.currency,
  v.setup_fee_minor, v.hourly_rate_minor, v.created_at FROM offering_versions v JOIN offerings o ON o.id = v.offering_id`;

export function templatePathOf(slug: string, version: string): string {
  return `templates/offerings/${slug}/${version}`;
}

const SELECT_OFFERINGS = 'SELECT slug, role, name, description, instances_per_workspace AS max, instances_per_workspace_reason AS why FROM offerings';
type OfferingRow = NewOffering & { max: number | null; why: string | null };

export async function listOfferings(sequelize: Sequelize): Promise<Offering[]> {
  const offerings = await sequelize.query<OfferingRow>(`${SELECT_OFFERINGS} ORDER BY slug`, { type: QueryTypes.SELECT });
  const versions = await sequelize.query<VersionRow>(SELECT_VERSIONS, { type: QueryTypes.SELECT });
  return offerings.map((o) => withVersions(o, versions.filter((v) => v.slug === o.slug)));
}

export async function getOffering(sequelize: Sequelize, tx: Transaction | undefined, slug: string): Promise<Offering> {
  const [offering] = await sequelize.query<OfferingRow>(`${SELECT_OFFERINGS} WHERE slug = :slug`, {
    type: QueryTypes.SELECT,
    transaction: tx ?? null,
    replacements: { slug },
  });
  if (!offering) throw new NotFoundError(`No offering ${slug}.`);
  const versions = await sequelize.query<VersionRow>(`${SELECT_VERSIONS} WHERE o.slug = :slug`, { type: QueryTypes.SELECT, transaction: tx ?? null, replacements: { slug } });
  return withVersions(offering, versions);
}

/** Platform admins: a new offering, without versions yet; a taken slug is 409. */
export async function createOffering(sequelize: Sequelize, tx: Transaction, input: NewOffering): Promise<Offering> {
  const [row] = await sequelize.query<{ slug: string }>(
    'INSERT INTO offerings (slug, role, name, description) VALUES (:slug, :role, :name, :description) ON CONFLICT (slug) DO NOTHING RETURNING slug',
    { type: QueryTypes.SELECT, transaction: tx, replacements: { ...input } },
  );
  if (!row) throw new ConflictError('offering-exists', `Offering ${input.slug} already exists.`);
  return getOffering(sequelize, tx, input.slug);
}

/** Checks a version before it is stored: semver, and a parameters schema every instance can use. */
export function checkNewVersion(input: NewOfferingVersion): void {
  if (semver.valid(input.version) !== input.version) {
    throw new ValidationError([{ in: 'body', pointer: '/version', message: 'must be a semantic version such as 1.2.3' }], 'The version is not valid.', 422);
  }
  // Prices become ledger amounts: exact minor units a JSON number carries (422 before anything is stored).
  const prices = (['setupFee', 'hourlyRate'] as const).filter((field) => !isExactMinor(input.pricing[field]));
  if (prices.length > 0) {
    throw new ValidationError(
      prices.map((field) => ({ in: 'body' as const, pointer: `/pricing/${field}`, message: `must be a whole number of minor units of at most ${MAX_MINOR}` })),
      'A price is beyond what the ledger carries exactly.',
      422,
    );
  }
  const problems = checkParametersSchema(input.parametersSchema);
  if (problems.length > 0) {
    throw new ValidationError(
      problems.map((message) => ({ in: 'body' as const, pointer: '/parametersSchema', message })),
      'The parameters schema is not acceptable.',
      422,
    );
  }
}

/** Platform admins: publish a version. Published versions are immutable (only their status moves). */
export async function addOfferingVersion(sequelize: Sequelize, tx: Transaction, catalog: TemplateCatalog, slug: string, input: NewOfferingVersion): Promise<OfferingVersion> {
  checkNewVersion(input);
  const [offering] = await sequelize.query<{ id: string; role: string }>('SELECT id, role FROM offerings WHERE slug = :slug', { type: QueryTypes.SELECT, transaction: tx, replacements: { slug } });
  if (!offering) throw new NotFoundError(`No offering ${slug}.`);
  checkRenders(catalog, { slug, role: offering.role }, input);
  const inserted = await insertVersion(sequelize, tx, offering.id, slug, input);
  if (!inserted) throw new ConflictError('version-exists', `Version ${input.version} of ${slug} already exists.`);
  return findVersion(sequelize, tx, slug, input.version);
}

/**
 * Refuses (422) a version this build cannot render: the worker renders every order of it from
 * the template folder, and a version that becomes the default with no folder fails every later
 * order there, long after the 201. Its folder must be in the catalog the service loaded, be of
 * this offering, role and version, and render an instance with the schema's defaults.
 */
function checkRenders(catalog: TemplateCatalog, offering: { slug: string; role: string }, input: NewOfferingVersion): void {
  const templatePath = input.templatePath ?? templatePathOf(offering.slug, input.version);
  const pointer = input.templatePath === undefined ? '/version' : '/templatePath';
  const refuse = (message: string): never => {
    throw new ValidationError([{ in: 'body', pointer, message }], 'The version cannot be rendered.', 422);
  };
  if (!catalog.offerings.has(templatePath)) {
    refuse(`${templatePath} is not in this build's templates: ship the folder (with parameters.schema.json) and deploy before publishing`);
  }
  const parameters: Record<string, unknown> = {};
  freshAjv().compile(input.parametersSchema)(parameters);
  const payload = { org: 'render-check', project: 'default', instanceName: 'render-check', offering: offering.slug, role: offering.role, version: input.version, templatePath, parameters };
  try {
    renderInstance(catalog, payload, '00000000-0000-4000-8000-000000000000', 'bucketed');
  } catch (error) {
    if (!(error instanceof TemplateError) && !(error instanceof InvalidManifestError)) throw error;
    refuse(`${templatePath} does not render with this schema's defaults: ${error.message}`);
  }
}

/** Inserts unless the version exists; returns whether it did. Shared with the catalog seed. */
export async function insertVersion(sequelize: Sequelize, tx: Transaction, offeringId: string, slug: string, input: NewOfferingVersion): Promise<boolean> {
  const rows = await sequelize.query(
    `INSERT INTO offering_versions (offering_id, version, template_path, parameters_schema, currency, setup_fee_minor, hourly_rate_minor, status, progress_deadline_seconds)
     VALUES (:offeringId, :version, :templatePath, :schema, :currency, :setupFee, :hourlyRate, :status, :deadline)
     ON CONFLICT (offering_id, version) DO NOTHING RETURNING id`,
    {
      type: QueryTypes.SELECT,
      transaction: tx,
      replacements: {
        offeringId,
        version: input.version,
        templatePath: input.templatePath ?? templatePathOf(slug, input.version),
        schema: JSON.stringify(input.parametersSchema),
        currency: input.pricing.currency,
        setupFee: input.pricing.setupFee,
        hourlyRate: input.pricing.hourlyRate,
        status: input.status ?? 'active',
        deadline: input.progressDeadlineSeconds ?? null,
      },
    },
  );
  return rows.length > 0;
}

/** Deprecate (still orderable by name, not the default) or retire (refused for new instances and updates). */
export async function setOfferingVersionStatus(sequelize: Sequelize, tx: Transaction, slug: string, version: string, status: VersionStatus): Promise<OfferingVersion> {
  const rows = await sequelize.query(
    `UPDATE offering_versions v SET status = :status, updated_at = now() FROM offerings o
     WHERE o.id = v.offering_id AND o.slug = :slug AND v.version = :version RETURNING v.id`,
    { type: QueryTypes.SELECT, transaction: tx, replacements: { slug, version, status } },
  );
  if (rows.length === 0) throw new NotFoundError(`No version ${version} of offering ${slug}.`);
  return findVersion(sequelize, tx, slug, version);
}

export interface ResolvedVersion extends OfferingVersion {
  id: string;
  offering: string;
  role: string;
}

/** A version row with its offering's role, as resolveOrderableVersion and pickOrderableVersion take it. */
export type OrderableVersionRow = VersionRow & { role: string };

/** Version rows with their offering's role (filter with a WHERE on `o.slug`). */
const SELECT_ORDERABLE_VERSIONS = SELECT_VERSIONS.replace('SELECT ', 'SELECT o.role, ');

/**
 * SQL for one value: the rows of SELECT_ORDERABLE_VERSIONS for the offering named by the
 * `:offering` replacement, as a JSON array (for a query that reads them along with something
 * else; parse with versionRowsFromJson).
 */
export const OFFERING_VERSIONS_JSON = `(SELECT coalesce(json_agg(r), '[]'::json) FROM (${SELECT_ORDERABLE_VERSIONS} WHERE o.slug = :offering) r)`;

/** OFFERING_VERSIONS_JSON's rows as the driver would have typed them: bigints as text, a Date. */
export function versionRowsFromJson(
  rows: (Omit<OrderableVersionRow, 'created_at' | 'setup_fee_minor' | 'hourly_rate_minor'> & { created_at: string; setup_fee_minor: number | string; hourly_rate_minor: number | string })[],
): OrderableVersionRow[] {
  return rows.map((row) => ({
    ...row,
    setup_fee_minor: String(row.setup_fee_minor),
    hourly_rate_minor: String(row.hourly_rate_minor),
    created_at: new Date(row.created_at),
  }));
}

/**
 * The version an instance is asked for: the named one, or the newest active one. Unknown
 * offerings and versions and retired versions are 422 naming the field.
 */
export async function resolveOrderableVersion(sequelize: Sequelize, tx: Transaction, slug: string, version: string | undefined): Promise<ResolvedVersion> {
  const rows = await sequelize.query<OrderableVersionRow>(`${SELECT_ORDERABLE_VERSIONS} WHERE o.slug = :slug`, {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { slug },
  });
  return pickOrderableVersion(slug, version, rows);
}

/** resolveOrderableVersion's choice among the offering's version rows (read by the caller). */
export function pickOrderableVersion(slug: string, version: string | undefined, rows: OrderableVersionRow[], renders: (templatePath: string) => boolean = () => true): ResolvedVersion {
  if (rows.length === 0) {
    throw new ValidationError([{ in: 'body', pointer: '/offering', message: `there is no offering ${slug} with versions` }], 'Unknown offering.', 422);
  }
  let row: OrderableVersionRow | undefined;
  if (version === undefined) {
    row = rows.filter((r) => r.status === 'active' && renders(r.template_path)).sort((a, b) => semver.rcompare(a.version, b.version))[0];
    if (!row) throw new UnprocessableError('no-active-version', `Offering ${slug} has no active version; name one.`);
  } else {
    row = rows.find((r) => r.version === version);
    if (!row) throw new ValidationError([{ in: 'body', pointer: '/version', message: `offering ${slug} has no version ${version}` }], 'Unknown version.', 422);
    if (row.status === 'retired') throw new UnprocessableError('version-retired', `Version ${version} of ${slug} is retired; choose a newer one.`);
  }
  return { ...presentVersion(row), id: row.id, offering: slug, role: row.role };
}

async function findVersion(sequelize: Sequelize, tx: Transaction, slug: string, version: string): Promise<OfferingVersion> {
  const [row] = await sequelize.query<VersionRow>(`${SELECT_VERSIONS} WHERE o.slug = :slug AND v.version = :version`, {
    type: QueryTypes.SELECT,
    transaction: tx,
    replacements: { slug, version },
  });
  return presentVersion(row!);
}

function withVersions(offering: OfferingRow, rows: VersionRow[]): Offering {
  return {
    slug: offering.slug,
    role: offering.role,
    name: offering.name,
    description: offering.description,
    instancesPerWorkspace: offering.max === null ? null : { max: offering.max, why: offering.why ?? '' },
    versions: rows.sort((a, b) => semver.rcompare(a.version, b.version)).map(presentVersion),
  };
}

function presentVersion(row: VersionRow): OfferingVersion {
  return {
    version: row.version,
    status: row.status,
    templatePath: row.template_path,
    parametersSchema: row.parameters_schema,
    pricing: { currency: row.currency, setupFee: Number(row.setup_fee_minor), hourlyRate: Number(row.hourly_rate_minor) },
    createdAt: row.created_at.toISOString(),
  };
}
