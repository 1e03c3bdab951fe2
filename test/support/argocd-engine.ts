import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';

const run = promisify(execFile);
const SOURCE = path.join(import.meta.dirname, 'argocd-engine', 'main.go');
/** Where Debian's golang-github-masterminds-sprig-dev and golang-github-antonmedv-expr-dev put their sources. */
const DEBIAN_GOPATH = '/usr/share/gocode';

export interface Condition {
  when: string;
  oncePer?: string;
  send: string[];
}

export interface Webhook {
  method: string;
  path: string;
  body: string;
}

/** The notification part of argocd-notifications-cm: triggers and webhook templates, parsed. */
export interface NotificationsConfig {
  triggers: Record<string, Condition[]>;
  templates: Record<string, { webhook: Record<string, Webhook> }>;
}

export interface EngineResult {
  app: string;
  trigger: string;
  condition: number;
  fired: boolean;
  error?: string;
  oncePer?: string;
  sent?: { template: string; service: string; method: string; path: string; body?: string; error?: string }[];
}

/** Reads `trigger.*` and `template.*` keys of a ConfigMap's data, each a YAML document as Argo CD reads them. */
export function notificationsConfig(data: Record<string, string>): NotificationsConfig {
  const config: NotificationsConfig = { triggers: {}, templates: {} };
  for (const [key, value] of Object.entries(data)) {
    if (key.startsWith('trigger.')) config.triggers[key.slice('trigger.'.length)] = YAML.parse(value) as Condition[];
    else if (key.startsWith('template.')) config.templates[key.slice('template.'.length)] = YAML.parse(value) as { webhook: Record<string, Webhook> };
  }
  return config;
}

const built = new Map<string, Promise<string>>();

/**
 * Builds test/support/argocd-engine/main.go once per source version (GOPATH mode against
 * Debian's packaged sprig and expr: no module download, no network). Throws with what to
 * install when Go or the packages are missing: the proof must not be skipped silently.
 */
export function argocdEngine(): Promise<string> {
  return goHarness(SOURCE);
}

/** Builds one of the Go harnesses under test/support/ (a single main.go), as argocdEngine does. */
export function goHarness(source: string): Promise<string> {
  let binary = built.get(source);
  if (!binary) {
    binary = buildGoHarness(source);
    built.set(source, binary);
  }
  return binary;
}

async function buildGoHarness(sourcePath: string): Promise<string> {
  const source = await fs.readFile(sourcePath);
  const name = path.basename(path.dirname(sourcePath));
  const binary = path.join(os.tmpdir(), `cp-${name}-${crypto.createHash('sha256').update(source).digest('hex').slice(0, 16)}`);
  try {
    await fs.access(binary);
    return binary;
  } catch {
    // not built yet
  }
  const staging = `${binary}.${process.pid}`;
  try {
    await run('go', ['build', '-o', staging, sourcePath], {
      cwd: os.tmpdir(),
      env: { ...process.env, GO111MODULE: 'off', GOPATH: DEBIAN_GOPATH, GOCACHE: path.join(os.tmpdir(), 'cp-go-cache'), GOFLAGS: '' },
    });
  } catch (error) {
    throw new Error(
      `Cannot build the Go harness ${sourcePath}: install Go, sprig and expr (apt-get install golang-go golang-github-masterminds-sprig-dev golang-github-antonmedv-expr-dev; .ci/run does). ${(error as Error).message}`,
      { cause: error },
    );
  }
  await fs.rename(staging, binary);
  return binary;
}

/** Evaluates every trigger on every Application and renders what fired, with Argo CD's engines. */
export async function evaluateNotifications(config: NotificationsConfig, apps: { label: string; app: object }[]): Promise<EngineResult[]> {
  return JSON.parse(await runGoHarness(SOURCE, { ...config, apps })) as EngineResult[];
}

/** Runs a Go harness with `input` as JSON on stdin; resolves to its stdout. */
export async function runGoHarness(source: string, input: object): Promise<string> {
  const binary = await goHarness(source);
  const child = execFile(binary, [], { maxBuffer: 64 * 1024 * 1024 });
  const output = new Promise<string>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${path.basename(path.dirname(source))} exited ${code}: ${stderr}`))));
  });
  child.stdin!.end(JSON.stringify(input));
  return output;
}
