import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './free-port.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface SpawnedService {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** The last lines the process wrote (stdout and stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: a crash at whatever point the process was. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /** Environment for the child, on top of PATH/HOME/HOST/PORT/LOG_LEVEL. */
  env: Record<string, string>;
  /** Script relative to the repository root; defaults to the service itself. */
  script?: string;
  startTimeoutMs?: number;
}

/**
 * Starts `node src/main.ts` (or another script that serves GET /healthz) on a free loopback
 * port and waits until /healthz answers. Unlike service-process.ts it does not depend on the
 * log line, so it works at any LOG_LEVEL (benchmarks run with `warn`).
 */
export async function spawnService(options: SpawnOptions): Promise<SpawnedService> {
  const port = await freePort();
  const child = spawn(process.execPath, [options.script ?? 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...options.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`service exited with ${exitCode} before serving:\n${lines.join('\n')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service did not serve /healthz within ${options.startTimeoutMs ?? 60_000} ms:\n${lines.join('\n')}`);
    }
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const gone = async (signal: NodeJS.Signals, graceMs: number) => {
    if (exitCode !== undefined) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return {
    url,
    pid: child.pid!,
    child,
    exited,
    output: () => lines.join('\n'),
    stop: (graceMs = 30_000) => gone('SIGTERM', graceMs),
    kill: () => gone('SIGKILL', 0),
  };
}
