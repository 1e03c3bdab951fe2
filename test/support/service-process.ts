import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface ServiceProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  developmentToken: string | undefined;
  output(): string;
  exited: Promise<number | null>;
}

/**
 * Starts `node src/main.ts` (what `npm start` runs) as a separate process and waits until it
 * prints where it listens. Used for what only a real process shows: start-up, signals, crashes.
 */
export async function startServiceProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start within ${timeoutMs} ms:\n${text}`)), timeoutMs);
    const onData = () => {
      const match = /control-plane listening on (http:\/\/\S+?)"/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before listening:\n${text}`));
    });
  });
  // The banner with the token is written right after the listening log line.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const token = /(cpt_[A-Za-z0-9_-]{43})/.exec(text)?.[1];
  return { child, url, developmentToken: token, output: () => text, exited };
}
