import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { loadConfig, withoutCredentials, type Config } from '../config.ts';
import { ConfigError } from '../errors.ts';

/** sysexits.h: what a shell script branches on. */
export const EX_USAGE = 64;
export const EX_UNAVAILABLE = 69;
export const EX_CONFIG = 78;

/** Writes `program: message` (and the usage) to stderr and exits with `code`. */
export function failer(program: string, usage: string): (code: number, message: string, withUsage?: boolean) => never {
  return (code, message, withUsage = false) => {
    process.stderr.write(`${program}: ${message}\n${withUsage ? `\n${usage}` : ''}`);
    process.exit(code);
  };
}

/** The service's configuration from the environment; a bad one exits 78 with what is wrong. */
export function readConfig(fail: (code: number, message: string) => never): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) fail(EX_CONFIG, error.message);
    throw error;
  }
}

/** The database URL with its credentials masked, to name it in an error. */
export const shown = (url: string): string => withoutCredentials(url);

/**
 * The command's options (strict, no positionals) with `-h`/`--help` added: a bad option exits 64
 * with the usage, `--help` prints the usage and exits 0.
 */
export function readCliOptions<const T extends ParseArgsOptionsConfig>(options: T, usage: string, fail: (code: number, message: string, withUsage?: boolean) => never) {
  const config = { options: { ...options, help: { type: 'boolean', short: 'h' } } as T & { help: { type: 'boolean'; short: 'h' } }, strict: true as const, allowPositionals: false as const };
  let parsed: ReturnType<typeof parseArgs<typeof config>>;
  try {
    parsed = parseArgs(config);
  } catch (error) {
    return fail(EX_USAGE, (error as Error).message, true);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return parsed.values;
}
