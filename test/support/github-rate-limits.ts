/**
 * GitHub's REST rate limits as the GitHub double enforces them. Every rule cites where GitHub
 * writes it (docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api, "RL" below)
 * and is at least as strict as what GitHub documents:
 *
 * - Primary: "5,000 requests per hour" for a token or an installation (RL, "Primary rate limit
 *   for authenticated users" / "for GitHub App installations"), in a window that starts with the
 *   first request and resets an hour later; every answer carries x-ratelimit-limit, -remaining,
 *   -used, -reset (epoch seconds) and -resource (RL, "Checking the status of your rate limit").
 *   Past it: 403 with x-ratelimit-remaining 0 (RL, "Exceeding the rate limit"). A 304 answer to a
 *   conditional request "does not count against your primary rate limit" (RL, best practices).
 * - Secondary: "no more than 80 content-generating requests per minute and no more than 500
 *   content-generating requests per hour" (RL, "About secondary rate limits"). GitHub does not
 *   list which requests generate content; the double counts every POST, PATCH, PUT and DELETE
 *   but a GraphQL query (stricter than GitHub, which counts creations only). Windows slide, so no
 *   burst across a window edge passes that a fixed window would let through.
 * - Secondary: "No more than 900 points per minute are allowed for REST API endpoints"; GET,
 *   HEAD and OPTIONS cost 1 point, POST, PATCH, PUT and DELETE 5 (RL, "Calculating points for the
 *   secondary rate limit"). GitHub counts per endpoint; the double counts all endpoints together.
 * - Secondary: "No more than 100 concurrent requests are allowed" (RL).
 * - Past a secondary limit: 403 with `retry-after` (seconds) and "You have exceeded a secondary
 *   rate limit"; "continuing to make requests while rate limited may result in the banning of
 *   your integration" (RL, "Exceeding the rate limit"): a request sent before retry-after has
 *   passed is refused again and recorded as a violation.
 */
export interface GithubLimits {
  primaryPerHour: number;
  contentPerMinute: number;
  contentPerHour: number;
  pointsPerMinute: number;
  concurrent: number;
}

export const GITHUB_LIMITS: GithubLimits = { primaryPerHour: 5_000, contentPerMinute: 80, contentPerHour: 500, pointsPerMinute: 900, concurrent: 100 };

const MINUTE = 60_000;
const HOUR = 3_600_000;

export interface LimitedRequest {
  method: string;
  /** The URL path: /graphql is GraphQL. */
  path: string;
  /** A GraphQL document that holds a mutation (creates content). */
  mutation?: boolean;
}

export interface Refusal {
  status: 403;
  message: string;
  headers: Record<string, string>;
  kind: 'primary' | 'secondary';
}

export interface Admission {
  refusal?: Refusal;
  /** The x-ratelimit-* headers every answer carries. */
  headers: Record<string, string>;
}

export function isContentGenerating(request: LimitedRequest): boolean {
  if (request.path === '/graphql') return request.mutation === true;
  return !['GET', 'HEAD', 'OPTIONS'].includes(request.method);
}

function points(request: LimitedRequest): number {
  if (request.path === '/graphql') return request.mutation ? 5 : 1;
  return ['GET', 'HEAD', 'OPTIONS'].includes(request.method) ? 1 : 5;
}

/** Timestamps in a sliding window, oldest first. */
class Window {
  readonly #stamps: { at: number; weight: number }[] = [];
  #total = 0;
  readonly span: number;
  constructor(span: number) {
    this.span = span;
  }
  total(now: number): number {
    while (this.#stamps.length > 0 && this.#stamps[0]!.at <= now - this.span) this.#total -= this.#stamps.shift()!.weight;
    return this.#total;
  }
  add(now: number, weight = 1): void {
    this.#stamps.push({ at: now, weight });
    this.#total += weight;
  }
  /** When the window will hold room for `weight` more (the oldest stamps age out). */
  roomAt(now: number, limit: number, weight = 1): number {
    let total = this.total(now);
    for (const stamp of this.#stamps) {
      if (total + weight <= limit) break;
      total -= stamp.weight;
      if (total + weight <= limit) return stamp.at + this.span;
    }
    return now;
  }
}

export class RateLimitEnforcer {
  readonly #limits: GithubLimits;
  readonly #clock: () => number;
  #primaryStart: number | undefined;
  #primaryUsed = 0;
  #graphqlStart: number | undefined;
  #graphqlUsed = 0;
  readonly #contentMinute = new Window(MINUTE);
  readonly #contentHour = new Window(HOUR);
  readonly #points = new Window(MINUTE);
  #inFlight = 0;
  /** Until when a secondary limit refuses everything (retry-after). */
  #penaltyUntil = 0;
  /** Requests that ignored a retry-after, and anything else a client must never do. */
  readonly violations: string[] = [];
  /** Every request refused for a limit, by kind. */
  readonly refused: { method: string; path: string; kind: 'primary' | 'secondary'; at: number }[] = [];
  /** Content-generating requests admitted, with when (simulated clock): writes spent. */
  readonly writes: number[] = [];

  constructor(limits: Partial<GithubLimits> = {}, clock: () => number = Date.now) {
    this.#limits = { ...GITHUB_LIMITS, ...limits };
    this.#clock = clock;
  }

  /** A request arrives (before its body is read): counts towards concurrency until release(). */
  arrive(): void {
    this.#inFlight += 1;
  }

  release(): void {
    this.#inFlight -= 1;
  }

  /** Decides whether a request is answered or refused for a limit, and counts it. */
  admit(request: LimitedRequest): Admission {
    const now = this.#clock();
    const graphql = request.path === '/graphql';
    // Each resource has its own window (x-ratelimit-resource: core, graphql).
    if (graphql) {
      if (this.#graphqlStart === undefined || now >= this.#graphqlStart + HOUR) [this.#graphqlStart, this.#graphqlUsed] = [now, 0];
    } else if (this.#primaryStart === undefined || now >= this.#primaryStart + HOUR) [this.#primaryStart, this.#primaryUsed] = [now, 0];
    const start = graphql ? this.#graphqlStart! : this.#primaryStart!;
    const used = graphql ? this.#graphqlUsed : this.#primaryUsed;
    const headers = (spent: number) => ({
      'x-ratelimit-limit': String(this.#limits.primaryPerHour),
      'x-ratelimit-remaining': String(Math.max(0, this.#limits.primaryPerHour - spent)),
      'x-ratelimit-used': String(Math.min(spent, this.#limits.primaryPerHour)),
      'x-ratelimit-reset': String(Math.ceil((start + HOUR) / 1000)),
      'x-ratelimit-resource': graphql ? 'graphql' : 'core',
    });
    if (used >= this.#limits.primaryPerHour) {
      return this.#refuse(request, now, {
        status: 403,
        kind: 'primary',
        message: 'API rate limit exceeded for installation ID 1.',
        headers: headers(used),
      });
    }
    if (graphql) this.#graphqlUsed += 1;
    else this.#primaryUsed += 1;
    const spent = graphql ? this.#graphqlUsed : this.#primaryUsed;
    const secondary = (retryAt: number): Admission =>
      this.#refuse(request, now, {
        status: 403,
        kind: 'secondary',
        message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
        headers: { ...headers(spent), 'retry-after': String(Math.max(1, Math.ceil((retryAt - now) / 1000))) },
      });
    if (now < this.#penaltyUntil) {
      this.violations.push(`${request.method} ${request.path} sent ${Math.ceil((this.#penaltyUntil - now) / 1000)} s before retry-after allowed it`);
      return secondary(this.#penaltyUntil);
    }
    if (this.#inFlight > this.#limits.concurrent) return secondary(now + MINUTE);
    const cost = points(request);
    if (this.#points.total(now) + cost > this.#limits.pointsPerMinute) return secondary(this.#points.roomAt(now, this.#limits.pointsPerMinute, cost));
    if (isContentGenerating(request)) {
      if (this.#contentMinute.total(now) + 1 > this.#limits.contentPerMinute) return secondary(this.#contentMinute.roomAt(now, this.#limits.contentPerMinute));
      if (this.#contentHour.total(now) + 1 > this.#limits.contentPerHour) return secondary(this.#contentHour.roomAt(now, this.#limits.contentPerHour));
      this.#contentMinute.add(now);
      this.#contentHour.add(now);
      this.writes.push(now);
    }
    this.#points.add(now, cost);
    return { headers: headers(spent) };
  }

  /** A 304 answer: it does not count against the primary limit. */
  notModified(request: LimitedRequest): void {
    if (request.path === '/graphql') this.#graphqlUsed = Math.max(0, this.#graphqlUsed - 1);
    else this.#primaryUsed = Math.max(0, this.#primaryUsed - 1);
  }

  #refuse(request: LimitedRequest, now: number, refusal: Refusal): Admission {
    this.refused.push({ method: request.method, path: request.path, kind: refusal.kind, at: now });
    if (refusal.kind === 'secondary') this.#penaltyUntil = Math.max(this.#penaltyUntil, now + Number(refusal.headers['retry-after']) * 1000);
    return { refusal, headers: refusal.headers };
  }
}
