import fs from 'node:fs/promises';
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { QueryTypes, type Sequelize } from 'sequelize';
import { parse as parseYaml } from 'yaml';
import { ValidationError } from '../errors.ts';
import { createAjv } from '../validation.ts';
import { checkNewVersion, insertVersion } from './catalog.ts';
import { slugSchema } from '../gitops/tenant-paths.ts';

/** Where the shipped catalog lives: templates/offerings/<slug>/{offering.yaml,<version>/...}. */
export const OFFERINGS_DIR = path.resolve(import.meta.dirname, '../../templates/offerings');

const OfferingFile = Type.Object(
  {
    slug: slugSchema('offering'),
    role: slugSchema('role'),
    name: Type.String({ minLength: 1 }),
    description: Type.String({ minLength: 1 }),
    /** At most `max` live instances per workspace, and why (shown in the 409 that refuses one more). */
    instancesPerWorkspace: Type.Optional(Type.Object({ max: Type.Integer({ minimum: 1 }), why: Type.String({ minLength: 1, maxLength: 1000 }) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);
const VersionFile = Type.Object(
  {
    version: Type.String({ minLength: 1 }),
    status: Type.Union([Type.Literal('active'), Type.Literal('deprecated'), Type.Literal('retired')]),
    pricing: Type.Object(
      {
        currency: Type.String({ pattern: '^[A-Z]{3}$' }),
        setupFee: Type.Integer({ minimum: 0 }),
        hourlyRate: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    /** The version's own progress deadline (seconds); INSTANCE_PROGRESS_DEADLINE_SECONDS otherwise. */
    progressDeadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 604_800 })),
  },
  { additionalProperties: false },
);

export interface SeedResult {
  offerings: string[];
  /** `<slug>@<version>` of the versions this run inserted (existing ones are left as they are). */
  insertedVersions: string[];
}

/**
 * Upserts the shipped catalog at start-up, in one transaction. Offerings take their name,
 * description and role from the files; versions are inserted when missing and otherwise left
 * alone (published versions are immutable, and a status an admin set through the API stays).
 * A malformed file stops start-up with a message naming it.
 */
export async function seedCatalog(sequelize: Sequelize, dir = OFFERINGS_DIR): Promise<SeedResult> {
  const ajv = createAjv({ useDefaults: false });
  const checkOffering = ajv.compile<Static<typeof OfferingFile>>(OfferingFile);
  const checkVersion = ajv.compile<Static<typeof VersionFile>>(VersionFile);
  const result: SeedResult = { offerings: [], insertedVersions: [] };
  const slugs = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();

  await sequelize.transaction(async (tx) => {
    for (const slug of slugs) {
      const offeringPath = path.join(dir, slug, 'offering.yaml');
      const offering: unknown = parseYaml(await fs.readFile(offeringPath, 'utf8'));
      if (!checkOffering(offering)) throw new Error(`${offeringPath}: ${ajv.errorsText(checkOffering.errors)}`);
      if (offering.slug !== slug) throw new Error(`${offeringPath}: slug ${offering.slug} does not match its folder ${slug}`);
      const [row] = await sequelize.query<{ id: string }>(
        `INSERT INTO offerings (slug, role, name, description, instances_per_workspace, instances_per_workspace_reason) VALUES (:slug, :role, :name, :description, :max, :why)
         ON CONFLICT (slug) DO UPDATE SET role = EXCLUDED.role, name = EXCLUDED.name, description = EXCLUDED.description,
           instances_per_workspace = EXCLUDED.instances_per_workspace, instances_per_workspace_reason = EXCLUDED.instances_per_workspace_reason,
           updated_at = CASE WHEN (offerings.role, offerings.name, offerings.description, offerings.instances_per_workspace, offerings.instances_per_workspace_reason)
                                  IS DISTINCT FROM (EXCLUDED.role, EXCLUDED.name, EXCLUDED.description, EXCLUDED.instances_per_workspace, EXCLUDED.instances_per_workspace_reason)
             THEN now() ELSE offerings.updated_at END
         RETURNING id`,
        {
          type: QueryTypes.SELECT,
          transaction: tx,
          replacements: {
            slug: offering.slug,
            role: offering.role,
            name: offering.name,
            description: offering.description,
            max: offering.instancesPerWorkspace?.max ?? null,
            why: offering.instancesPerWorkspace?.why ?? null,
          },
        },
      );
      result.offerings.push(slug);

      const versions = (await fs.readdir(path.join(dir, slug), { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
      for (const version of versions) {
        const versionDir = path.join(dir, slug, version);
        const file: unknown = parseYaml(await fs.readFile(path.join(versionDir, 'version.yaml'), 'utf8'));
        if (!checkVersion(file)) throw new Error(`${versionDir}/version.yaml: ${ajv.errorsText(checkVersion.errors)}`);
        if (file.version !== version) throw new Error(`${versionDir}/version.yaml: version ${file.version} does not match its folder ${version}`);
        const parametersSchema = JSON.parse(await fs.readFile(path.join(versionDir, 'parameters.schema.json'), 'utf8')) as Record<string, unknown>;
        const input = { version, status: file.status, pricing: file.pricing, parametersSchema, ...(file.progressDeadlineSeconds ? { progressDeadlineSeconds: file.progressDeadlineSeconds } : {}) };
        try {
          checkNewVersion(input);
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
          throw new Error(`${versionDir}: ${error.errors.map((e) => `${e.pointer} ${e.message}`).join('; ')}`, { cause: error });
        }
        if (await insertVersion(sequelize, tx, row!.id, slug, input)) result.insertedVersions.push(`${slug}@${version}`);
      }
    }
  });
  return result;
}
