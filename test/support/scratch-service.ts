import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { generateApiToken, upsertApiToken } from '../../src/db/api-tokens.ts';
import { createLogger } from '../../src/logger.ts';
import { createSequelize } from '../../src/db/database.ts';
import { spawnService, type SpawnedService } from './spawned-service.ts';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new empty database on the server of `adminUrl`, for one benchmark or fault test. */
export function createDatabaseOn(adminUrl: string, label: string): Promise<ScratchDatabase> {
  return createNamedDatabase(adminUrl, `cp_${label}_${Date.now().toString(36)}_${process.pid}`);
}

/** Database `name` on the server of `adminUrl`: empty, or a copy of `template` (nobody may be connected to it). */
export async function createNamedDatabase(adminUrl: string, name: string, template?: string): Promise<ScratchDatabase> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const copy = template ? ` TEMPLATE ${admin.escapeIdentifier(template)}` : '';
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}${copy}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface ServiceSetup {
  databaseUrl: string;
  /** Where this setup keeps its local GitOps repository and data. */
  dataDir: string;
  gitDir: string;
  /** Extra environment for every replica. */
  env?: Record<string, string>;
}

/** Starts one replica of the real service (`node src/main.ts`) on the setup's database and repository. */
export function startReplica(setup: ServiceSetup, extraEnv: Record<string, string> = {}): Promise<SpawnedService> {
  return spawnService({
    env: {
      DATABASE_URL: setup.databaseUrl,
      DATA_DIR: setup.dataDir,
      GITOPS_LOCAL_PATH: setup.gitDir,
      ...setup.env,
      ...extraEnv,
    },
  });
}

export async function newServiceSetup(databaseUrl: string, workDir: string, env: Record<string, string> = {}): Promise<ServiceSetup> {
  const dataDir = path.join(workDir, 'data');
  await fs.mkdir(dataDir, { recursive: true });
  return { databaseUrl, dataDir, gitDir: path.join(dataDir, 'gsv-gitops.git'), env };
}

export interface Caller {
  token: string;
  subject: string;
  headers: Record<string, string>;
}

/** An API token for `subject` (platform admin or not), written straight into the service's database. */
export async function createCaller(databaseUrl: string, subject: string, platformAdmin = false): Promise<Caller> {
  const sequelize = createSequelize({ url: databaseUrl, poolMax: 1, logger: createLogger('silent') });
  try {
    const token = generateApiToken();
    await upsertApiToken(sequelize, token, { name: `caller-${subject}`, subject, username: subject, email: `${subject}@example.test`, platformAdmin });
    return { token, subject, headers: { authorization: `Bearer ${token}` } };
  } finally {
    await sequelize.close();
  }
}
