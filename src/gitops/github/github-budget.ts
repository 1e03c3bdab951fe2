import type { Sequelize } from 'sequelize';
import { peekTokens, spendTokens, takeTokens, type BucketShape } from '../../db/write-budget.ts';
import { BackendRateLimitedError } from '../repository.ts';

/**
 * What the github driver may spend, so that no load earns a rate-limit answer
 * (docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api):
 *
 * - Content-creating requests (every POST, PATCH, PUT and DELETE but a GraphQL query) come out
 *   of a token bucket shared by all replicas (db/write-budget.ts): `burst` tokens, refilled at
 *   (writesPerHour − burst) an hour. In any span of T seconds the service then sends at most
 *   burst + (writesPerHour − burst)·T/3600 writes: at most writesPerHour in any hour, and at
 *   most burst + (writesPerHour − burst)/60 in any minute; config.ts refuses settings that
 *   would let either pass GitHub's 500 an hour or 80 a minute. The bucket spreads writes so
 *   the hour's budget lasts the hour instead of going in the first minutes.
 * - The primary limit (5,000 requests an hour) is read from every answer's x-ratelimit-*
 *   headers; when only `primaryReserve` requests remain before the reset, new batches wait for
 *   the reset (what remains is for reads: webhooks, readiness, polling), and no request is sent
 *   once none remains (it would be refused).
 *
 * The change worker asks `readyIn` before it claims a batch: while the budget is short the
 * queue grows, so the next batch carries more changes for the same writes. A write that would
 * still have to wait longer than `maxWaitMs` is not sent: BackendRateLimitedError puts its
 * batch back in the queue until the budget allows it.
 */
export interface BudgetClock {
  /** Milliseconds since the epoch, as the budget counts them. */
  now(): number;
  /** Real milliseconds to sleep for `ms` of the budget's clock (a benchmark compresses time). */
  realMs(ms: number): number;
}

/**
 * How many orgs one batch of per-org commits may hold: each org's commit costs 2 writes (a tree
 * and a commit), the pull request's own about 4; a batch must fit in the burst the write budget
 * pays for at once, or it would wait on itself for the budget to refill.
 */
export function orgsPerBatch(burst: number): number {
  return Math.max(1, Math.floor((burst - 4) / 2));
}

export const REAL_CLOCK: BudgetClock = { now: () => Date.now(), realMs: (ms) => ms };

export interface GithubBudgetOptions {
  sequelize: Sequelize;
  /** The GitHub identity the limits belong to (an installation, a token): one bucket each. */
  identity: string;
  writesPerHour: number;
  burst: number;
  primaryReserve: number;
  /** Longest wait for a write token in place (default 20 s); longer, the batch goes back to the queue. */
  maxWaitMs?: number;
  clock?: BudgetClock;
}

export interface RateLimitSnapshot {
  resource: string;
  limit: number;
  remaining: number;
  /** Epoch seconds. */
  reset: number;
}

export interface BudgetObserver {
  rateLimit(snapshot: RateLimitSnapshot): void;
  write(): void;
  waited(ms: number): void;
}

/** Writes a published batch costs at most: tree, commit, ref, pull request, merge. */
export const WRITES_PER_BATCH = 5;

const HOUR_MS = 3_600_000;

function isGraphql(url: string): boolean {
  return /\/graphql$/.test(new URL(url, 'https://api.github.com').pathname);
}

function isContentCreating(method: string, url: string): boolean {
  const upper = method.toUpperCase();
  if (upper === 'GET' || upper === 'HEAD' || upper === 'OPTIONS') return false;
  // The driver sends GraphQL queries only (listings), never mutations.
  return !isGraphql(url);
}

export class GithubBudget {
  readonly clock: BudgetClock;
  readonly #sequelize: Sequelize;
  readonly #bucket: BucketShape;
  readonly #reserve: number;
  readonly #maxWaitMs: number;
  readonly #observers: BudgetObserver[] = [];
  /** The primary limit as the last answer stated it, per resource (core, graphql, …). */
  readonly #primary = new Map<string, RateLimitSnapshot>();
  /** This replica's writes of the last hour (budget clock), for the gauge. */
  readonly #recentWrites: number[] = [];

  constructor(options: GithubBudgetOptions) {
    this.#sequelize = options.sequelize;
    this.clock = options.clock ?? REAL_CLOCK;
    this.#bucket = { key: options.identity, capacity: options.burst, perMs: (options.writesPerHour - options.burst) / HOUR_MS };
    this.#reserve = options.primaryReserve;
    this.#maxWaitMs = options.maxWaitMs ?? 20_000;
  }

  observe(observer: BudgetObserver): void {
    this.#observers.push(observer);
  }

  /** Reads x-ratelimit-* from an answer's headers (any status). */
  recordHeaders(headers: { get(name: string): string | null }): void {
    const limit = Number(headers.get('x-ratelimit-limit'));
    const remaining = Number(headers.get('x-ratelimit-remaining'));
    const reset = Number(headers.get('x-ratelimit-reset'));
    if (headers.get('x-ratelimit-remaining') === null || !Number.isFinite(remaining) || !Number.isFinite(reset)) return;
    const snapshot = { resource: headers.get('x-ratelimit-resource') ?? 'core', limit: Number.isFinite(limit) ? limit : 0, remaining, reset };
    this.#primary.set(snapshot.resource, snapshot);
    for (const observer of this.#observers) observer.rateLimit(snapshot);
  }

  /** Budget-clock ms until `writes` writes may start (0: now), primary reserve included. */
  async readyIn(writes = WRITES_PER_BATCH): Promise<number> {
    const now = this.clock.now();
    const core = this.#primary.get('core');
    if (core && core.remaining <= this.#reserve && core.reset * 1000 > now) return core.reset * 1000 - now;
    const tokens = await peekTokens(this.#sequelize, this.#bucket, now);
    return tokens >= writes ? 0 : Math.ceil((writes - tokens) / this.#bucket.perMs);
  }

  /**
   * Before a request is sent: refuses it when the primary limit has nothing left, and takes a
   * write token for a content-creating one, waiting up to maxWaitMs for it. True when it took one.
   */
  async beforeRequest(method: string, url: string): Promise<boolean> {
    const resource = isGraphql(url) ? 'graphql' : 'core';
    const primary = this.#primary.get(resource);
    const now = this.clock.now();
    if (primary && primary.remaining <= 0 && primary.reset * 1000 > now) {
      throw new BackendRateLimitedError(`GitHub's primary rate limit (${resource}) has no request left until ${new Date(primary.reset * 1000).toISOString()}`, new Date(this.#realTime(primary.reset * 1000 - now)));
    }
    if (!isContentCreating(method, url)) return false;
    let waited = 0;
    for (;;) {
      const state = await takeTokens(this.#sequelize, this.#bucket, 1, this.clock.now());
      if (state.taken) break;
      const wait = Math.ceil((1 - state.tokens) / this.#bucket.perMs);
      if (waited + wait > this.#maxWaitMs) {
        throw new BackendRateLimitedError(`the write budget (${this.#bucket.key}) has no token for ${Math.ceil(wait / 1000)} s`, new Date(this.#realTime(wait)));
      }
      await new Promise((resolve) => setTimeout(resolve, this.clock.realMs(wait)));
      waited += wait;
    }
    if (waited > 0) for (const observer of this.#observers) observer.waited(waited);
    this.#countWrite();
    return true;
  }

  /** Writes sent beyond the token taken for them (the client's own retries): spent after the fact. */
  async spentExtra(writes: number): Promise<void> {
    if (writes <= 0) return;
    await spendTokens(this.#sequelize, this.#bucket, writes, this.clock.now());
    for (let i = 0; i < writes; i += 1) this.#countWrite();
  }

  /** This replica's writes in the last hour of the budget's clock. */
  writesLastHour(): number {
    const since = this.clock.now() - HOUR_MS;
    while (this.#recentWrites.length > 0 && this.#recentWrites[0]! <= since) this.#recentWrites.shift();
    return this.#recentWrites.length;
  }

  async tokens(): Promise<number> {
    return peekTokens(this.#sequelize, this.#bucket, this.clock.now());
  }

  #countWrite(): void {
    this.#recentWrites.push(this.clock.now());
    for (const observer of this.#observers) observer.write();
  }

  /** The real time at which `ms` of the budget's clock from now will have passed. */
  #realTime(ms: number): number {
    return Date.now() + this.clock.realMs(ms);
  }
}
