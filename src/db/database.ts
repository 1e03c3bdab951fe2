import { Sequelize } from 'sequelize';
import type { Logger } from '../logger.ts';

export interface DatabaseOptions {
  url: string;
  poolMax: number;
  logger: Logger;
}

/**
 * One Sequelize instance per process, built by the composition root and passed down.
 * Timestamps are stored as timestamptz; `underscored` keeps SQL names snake_case.
 */
export function createSequelize(options: DatabaseOptions): Sequelize {
  return new Sequelize(options.url, {
    dialect: 'postgres',
    logging: (sql) => options.logger.trace({ sql }, 'sql'),
    pool: { max: options.poolMax, min: 0, idle: 10_000, acquire: 10_000 },
    define: { underscored: true, timestamps: true },
    dialectOptions: { application_name: 'control-plane' },
  });
}

/** Readiness probe for the database: a round trip, bounded so /readyz never hangs. */
export async function pingDatabase(sequelize: Sequelize, timeoutMs = 2_000): Promise<void> {
  await withTimeout(sequelize.query('SELECT 1'), timeoutMs, 'database did not answer');
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
