// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/*
 * Layering (house rules 1 and 8). Allowed arrows between the folders of src/; everything not
 * listed is refused by the rules below:
 *
 *   service.ts, main.ts, cli/ (composition root) → anything in src/
 *   dev/      (development stand-ins)  → gitops/, jobs/, webhooks/
 *   api/      (Koa: parse → call → present) → domain/, webhooks/, db/, gitops/
 *   webhooks/ (verify, dedupe, receive)     → domain/, db/, gitops/
 *   jobs/     (workers, reconcilers)        → domain/, db/, gitops/, keycloak/
 *   domain/   (rules, no Koa)               → db/, gitops/, keycloak/
 *   db/, gitops/, keycloak/                 → nothing above them
 *   every folder → the shared modules at the root (errors.ts, validation.ts, logger.ts, metrics.ts,
 *                  config.ts)
 *
 * Only api/ imports koa or @koa/*; nothing in src/ or migrations/ imports test/; no folder but the
 * composition root imports service.ts, main.ts, cli/ or dev/. Import cycles are refused by
 * scripts/check-import-cycles.ts (run by `npm run lint`).
 */

/** A relative import that climbs out of the importing folder into src/<name>/. */
const into = (name, message) => ({ regex: String.raw`^(\.\./)+${name}(/|$)`, message });

const NO_TEST = {
  regex: String.raw`^(\.\./)+test(/|$)`,
  message: 'production code never imports test/ (house rule 4)',
};
const NO_KOA = {
  regex: String.raw`^(koa|@koa/.+)$`,
  message: 'only api/ speaks Koa: take plain values and return plain results (house rule 1)',
};
const NO_ROOT = [
  {
    regex: String.raw`^(\.\./)+(service|main)\.ts$`,
    message: 'the composition root imports the layers, never the reverse',
  },
  into('cli', 'cli/ is an entry point: nothing imports it'),
  into('dev', 'dev/ holds development stand-ins: production layers never depend on them'),
];
const NO_API = into('api', 'only the composition root imports api/: move what is shared below it (db/, domain/)');
const NO_WEBHOOKS = into('webhooks', 'webhooks/ is an entry point like api/: move what is shared to domain/ or below');
const NO_JOBS = into('jobs', 'jobs/ is an entry point like api/: move what is shared into domain/ or below');
const NO_DOMAIN = into('domain', 'db/, gitops/ and keycloak/ sit below domain/: pass what they need as plain values');

/** no-restricted-imports for one folder. Flat config replaces a rule's options per block: each repeats NO_TEST. */
const layer = (files, ...patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns: [NO_TEST, ...patterns] }] },
});

export default tseslint.config(
  { ignores: ['node_modules/', '.data/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': ['error', { patterns: [NO_TEST] }],
    },
  },
  layer(['src/*.ts', 'src/cli/**'], NO_KOA),
  layer(['src/dev/**'], NO_KOA, NO_API, into('domain', 'dev/ plays Argo CD: it calls the service over HTTP')),
  layer(['src/api/**'], ...NO_ROOT, NO_JOBS),
  layer(['src/webhooks/**'], ...NO_ROOT, NO_KOA, NO_API, NO_JOBS),
  layer(['src/jobs/**'], ...NO_ROOT, NO_KOA, NO_API, NO_WEBHOOKS),
  layer(['src/domain/**'], ...NO_ROOT, NO_KOA, NO_API, NO_WEBHOOKS, NO_JOBS),
  layer(['src/db/**', 'src/gitops/**', 'src/keycloak/**'], ...NO_ROOT, NO_KOA, NO_API, NO_WEBHOOKS, NO_JOBS, NO_DOMAIN),
  {
    files: ['test/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
