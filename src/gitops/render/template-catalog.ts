import fs from 'node:fs/promises';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { createAjv } from '../../validation.ts';
import { parseManifest } from './manifest-serialization.ts';

export const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../../templates');

/** A resource template: its path relative to its template directory and its parsed YAML. */
export interface TemplateFile {
  path: string;
  document: unknown;
}

export interface OfferingTemplate {
  slug: string;
  role: string;
  version: string;
  /** 'templates/offerings/<slug>/<version>', as change payloads name it. */
  templatePath: string;
  files: TemplateFile[];
  /** presets.yaml: per enum parameter, a table from the parameter's value to an object. */
  presets: Record<string, Record<string, unknown>>;
  /** parameters.schema.json, compiled with defaults applied. */
  validateParameters: ValidateFunction;
}

/** Everything the renderer reads, loaded once at start-up; rendering itself is pure. */
export interface TemplateCatalog {
  tenantBase: TemplateFile[];
  tenantRole: TemplateFile[];
  /** templates/platform/<dir>/ → platform/base/<dir>/ */
  platform: Map<string, TemplateFile[]>;
  /** templates/platform-application.yaml: the Application platform-apps holds per platform/base/<dir>. */
  platformApplication: TemplateFile;
  offerings: Map<string, OfferingTemplate>;
  /** Every role of the catalog, sorted: a workspace gets one namespace per role. */
  roles: string[];
  /** Every chart source of the catalog, sorted: what a tenant's AppProject may deploy from. */
  sourceRepos: string[];
}

/** Files of an offering version folder that are not resources. */
const VERSION_METADATA = new Set(['version.yaml', 'presets.yaml', 'parameters.schema.json']);

export async function loadTemplateCatalog(root = TEMPLATES_DIR): Promise<TemplateCatalog> {
  const ajv = createAjv({ useDefaults: true });
  const offerings = new Map<string, OfferingTemplate>();
  const offeringsDir = path.join(root, 'offerings');
  for (const slug of await subdirectories(offeringsDir)) {
    const offering = parseManifest(await fs.readFile(path.join(offeringsDir, slug, 'offering.yaml'), 'utf8')) as { slug: string; role: string };
    for (const version of await subdirectories(path.join(offeringsDir, slug))) {
      const dir = path.join(offeringsDir, slug, version);
      const presetsText = await fs.readFile(path.join(dir, 'presets.yaml'), 'utf8').catch(() => '{}');
      const schema = JSON.parse(await fs.readFile(path.join(dir, 'parameters.schema.json'), 'utf8')) as Record<string, unknown>;
      const { $schema: _ignored, ...schemaBody } = schema;
      const templatePath = `templates/offerings/${slug}/${version}`;
      offerings.set(templatePath, {
        slug: offering.slug,
        role: offering.role,
        version,
        templatePath,
        files: await readTemplates(dir),
        presets: (parseManifest(presetsText) ?? {}) as OfferingTemplate['presets'],
        validateParameters: ajv.compile(schemaBody),
      });
    }
  }
  const platform = new Map<string, TemplateFile[]>();
  for (const dir of await subdirectories(path.join(root, 'platform'))) {
    platform.set(dir, await readTemplates(path.join(root, 'platform', dir)));
  }
  const sourceRepos = new Set<string>();
  for (const offering of offerings.values()) {
    for (const file of offering.files) {
      const repo = (file.document as { spec?: { source?: { repoURL?: unknown } } }).spec?.source?.repoURL;
      if (typeof repo === 'string') sourceRepos.add(repo);
    }
  }
  return {
    tenantBase: await readTemplates(path.join(root, 'tenant', 'base')),
    tenantRole: await readTemplates(path.join(root, 'tenant', 'role')),
    platform,
    platformApplication: { path: 'platform-application.yaml', document: parseManifest(await fs.readFile(path.join(root, 'platform-application.yaml'), 'utf8')) },
    offerings,
    roles: [...new Set([...offerings.values()].map((o) => o.role))].sort(),
    sourceRepos: [...sourceRepos].sort(),
  };
}

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

/** The YAML files directly in `dir` (one resource each), parsed; sorted by name. */
async function readTemplates(dir: string): Promise<TemplateFile[]> {
  const files: TemplateFile[] = [];
  for (const entry of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!entry.isFile() || !/\.ya?ml$/.test(entry.name) || VERSION_METADATA.has(entry.name)) continue;
    files.push({ path: entry.name, document: parseManifest(await fs.readFile(path.join(dir, entry.name), 'utf8')) });
  }
  return files;
}
