import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadTemplateCatalog, TEMPLATES_DIR, type TemplateCatalog } from '../../src/gitops/render/template-catalog.ts';

const FIXTURE_OFFERINGS = path.resolve(import.meta.dirname, '../fixtures/offerings');

/**
 * The shipped catalog plus the test-only offerings of test/fixtures/offerings (such as
 * `upgrade-demo`, whose versions render different file lists), loaded the way the service
 * loads its own: from a copy of templates/ with the fixtures added.
 */
export async function loadFixtureCatalog(): Promise<TemplateCatalog> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'cp-catalog-'));
  try {
    await fs.cp(TEMPLATES_DIR, root, { recursive: true });
    await fs.cp(FIXTURE_OFFERINGS, path.join(root, 'offerings'), { recursive: true });
    return await loadTemplateCatalog(root);
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}
