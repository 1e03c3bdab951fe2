import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The service's Prometheus metrics, one registry per process built by the composition root
 * (never prom-client's global registry, so tests can build several apps side by side).
 */
export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  httpRequestsInFlight: Counter<'method'>;
  /** Metering passes, by whether this replica led (held the advisory lock) or skipped. */
  meteringRuns: Counter<'role'>;
  meteringHoursCharged: Counter;
  meteringInstancesSuspended: Counter;
  /** Merges tried for auto-merge pull requests (when published, then by the PR reconciler), by outcome. */
  autoMergeAttempts: Counter<'outcome'>;
  /** Change batches the backend's rate limit sent back to wait (none is failed for it). */
  gitopsRateLimited: Counter;
  /** Pushes of the local repository to GITOPS_LOCAL_PUSH_URL, by outcome. */
  gitopsPushes: Counter<'outcome'>;
  /** 1 while ref moves wait to be pushed (a push is due or failing), 0 when the remote has everything. */
  gitopsPushPending: Gauge;
  gitopsPushLastSuccess: Gauge;
  /** Webhook deliveries handled by the receivers, by source and outcome. */
  webhookDeliveries: Counter<'source' | 'outcome'>;
  /** Reconciler passes that could not list Argo CD Applications, by reason (ApplicationListFailure). */
  argocdApplicationListFailures: Counter<'reason'>;
  /** Saleor credit orders handled, by outcome (credited, refunded, unmatched, unchanged) and by what found them (webhook, reconciler). */
  saleorOrders: Counter<'outcome' | 'via'>;
  /** Minor units a refund could not take back because the wallet had less available, by currency. */
  saleorRefundShortfall: Counter<'currency'>;
  /** Saleor reconciliation passes, by role (leader, follower) or failed. */
  saleorReconcileRuns: Counter<'role'>;
  /** Differences the Saleor reconciler found between paid orders and credits, by kind. */
  saleorReconcileMismatches: Counter<'kind'>;
  /** Membership operations for Keycloak still to apply (read by the mirror's leader after each pass). */
  keycloakMirrorPending: Gauge;
  /** Membership operation attempts, by result: applied, unknown_user (the realm has no such user), retried (Keycloak failed). */
  keycloakMirrorOps: Counter<'result'>;
  /** Members whose Keycloak groups the reconciler found changed by hand, and queued back to the database's state. */
  keycloakMirrorDriftCorrected: Counter;
}

export type WebhookDeliveryOutcome = 'processed' | 'duplicate' | 'ignored' | 'rejected' | 'failed';

export function createMetrics(options: { collectDefaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.collectDefaults ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by method, route template and status code.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    httpRequestsInFlight: new Counter({
      name: 'http_requests_started_total',
      help: 'HTTP requests started, by method (compare with the histogram count for in-flight).',
      labelNames: ['method'],
      registers: [registry],
    }),
    meteringRuns: new Counter({
      name: 'metering_runs_total',
      help: 'Metering passes, by role: leader (charged) or follower (another replica held the lock).',
      labelNames: ['role'],
      registers: [registry],
    }),
    meteringHoursCharged: new Counter({
      name: 'metering_hours_charged_total',
      help: 'Instance-hours charged (or recorded at a zero rate) by metering on this replica.',
      registers: [registry],
    }),
    meteringInstancesSuspended: new Counter({
      name: 'metering_instances_suspended_total',
      help: 'Instances suspended because their wallet could not pay an hour.',
      registers: [registry],
    }),
    gitopsRateLimited: new Counter({
      name: 'gitops_rate_limited_total',
      help: "Change batches that waited for the Git backend's rate limit (primary or secondary) instead of failing.",
      registers: [registry],
    }),
    autoMergeAttempts: new Counter({
      name: 'gitops_auto_merge_attempts_total',
      help: 'Merge attempts of auto-merge pull requests, by outcome: merged, waiting (not mergeable yet), conflict (needs a person), error.',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    argocdApplicationListFailures: new Counter({
      name: 'argocd_application_list_failures_total',
      help: 'Reconciler passes that could not list Argo CD Applications, by reason: forbidden (RBAC: the service account cannot list applications.argoproj.io), unauthorized, expired (the list kept expiring mid-way), unavailable. The pass goes on without them.',
      labelNames: ['reason'],
      registers: [registry],
    }),
    gitopsPushes: new Counter({
      name: 'gitops_pushes_total',
      help: 'Pushes of the local GitOps repository to GITOPS_LOCAL_PUSH_URL, by outcome: pushed or failed (retried with backoff).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    gitopsPushPending: new Gauge({
      name: 'gitops_push_pending',
      help: '1 while ref moves of the local GitOps repository are not yet on the push remote (due or failing), else 0.',
      registers: [registry],
    }),
    gitopsPushLastSuccess: new Gauge({
      name: 'gitops_push_last_success_timestamp_seconds',
      help: 'Unix time of the last successful push to GITOPS_LOCAL_PUSH_URL.',
      registers: [registry],
    }),
    saleorOrders: new Counter({
      name: 'saleor_orders_total',
      help: 'Saleor orders that buy credit, by outcome (credited, refunded, unmatched: no known org in the metadata, unchanged) and via (webhook, reconciler).',
      labelNames: ['outcome', 'via'],
      registers: [registry],
    }),
    saleorRefundShortfall: new Counter({
      name: 'saleor_refund_shortfall_minor_total',
      help: 'Minor units that Saleor refunds could not take back from a wallet (it had less available), by currency; recorded on the order for a platform admin.',
      labelNames: ['currency'],
      registers: [registry],
    }),
    saleorReconcileRuns: new Counter({
      name: 'saleor_reconcile_runs_total',
      help: 'Saleor reconciliation passes, by role: leader (compared), follower (another replica held the lock), failed (Saleor could not be read).',
      labelNames: ['role'],
      registers: [registry],
    }),
    saleorReconcileMismatches: new Counter({
      name: 'saleor_reconcile_mismatches_total',
      help: 'Differences between paid Saleor orders and credits found by the reconciler, by kind: missing-credit and missing-refund (applied by the reconciler), unmatched (no known org), credit-without-paid-order and amount-differs (for a person).',
      labelNames: ['kind'],
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook deliveries, by source (github, argocd, saleor) and outcome: processed, duplicate (done before), ignored (no effect here), rejected (4xx: signature, token, payload), failed (5xx: GitHub redelivers, Argo CD and Saleor retry).',
      labelNames: ['source', 'outcome'],
      registers: [registry],
    }),
    keycloakMirrorPending: new Gauge({
      name: 'keycloak_membership_ops_pending',
      help: 'Membership operations queued for Keycloak and not yet applied (the outbox depth), as the mirror leader last read it.',
      registers: [registry],
    }),
    keycloakMirrorOps: new Counter({
      name: 'keycloak_membership_ops_total',
      help: 'Attempts at membership operations for Keycloak, by result: applied, unknown_user (no such user in the realm: skipped), retried (Keycloak failed; tried again with backoff).',
      labelNames: ['result'],
      registers: [registry],
    }),
    keycloakMirrorDriftCorrected: new Counter({
      name: 'keycloak_membership_drift_corrected_total',
      help: "Members whose Keycloak groups the reconciler found changed outside the API (Keycloak's console) and queued back to the database's state.",
      registers: [registry],
    }),
  };
}

/** What the database holds at one moment, for the gauges below; every label combination present, zeros included. */
export interface StateCounts {
  changes: { kind: string; status: string; count: number }[];
  instances: { state: string; count: number }[];
  /** Instances whose desired and observed specs disagree (instances.drift is set). */
  drifted: number;
  /** Instances still syncing or updating past their progress deadline after their change merged. */
  pastProgressDeadline: number;
  /** Directories on the base branch that no instance owns, not resolved since. */
  unknownTenantPaths: number;
  /** Age of the oldest pending change when the counts were read; 0 when none is pending. */
  oldestPendingAgeSeconds: number;
}

export interface StateGaugeOptions {
  read: () => Promise<StateCounts>;
  /** Called with each failed read; the scrape goes on with the last values. */
  onError: (error: unknown) => void;
  /** How long one read answers every scrape (several Prometheus servers, several replicas). */
  cacheMs?: number;
  /** A scrape waits this long for a read, then answers with the last values. */
  timeoutMs?: number;
  now?: () => number;
}

/**
 * Gauges of what the database holds (changes by kind and status, instances by state, drift,
 * unknown tenant paths, the oldest pending change), read at scrape time with one query that
 * every gauge shares. At most one read runs at a time and its answer serves every scrape for
 * `cacheMs`; a failed or slow read never fails the scrape: the last values stay, and
 * state_gauges_read_failures_total and state_gauges_last_read_timestamp_seconds tell how stale
 * they are.
 */
export function registerStateGauges(registry: Registry, options: StateGaugeOptions): void {
  const { read, onError, cacheMs = 5_000, timeoutMs = 2_000, now = Date.now } = options;
  let last: { counts: StateCounts; readAt: number } | undefined;
  let attemptedAt = -Infinity;
  /** The database read itself, until it settles (it may outlive the scrape that started it). */
  let query: Promise<unknown> | undefined;
  /** What scrapes wait for: that read, for at most timeoutMs. */
  let waiting: Promise<void> | undefined;
  const failures = new Counter({
    name: 'state_gauges_read_failures_total',
    help: 'Failed or timed-out reads of the state gauges from PostgreSQL (the scrape answered with the last values).',
    registers: [registry],
    // Every series of a scrape is collected at once: these wait for the read like the gauges.
    collect: () => current().then(() => undefined),
  });
  const lastRead = new Gauge({
    name: 'state_gauges_last_read_timestamp_seconds',
    help: 'Unix time of the last successful read of the state gauges from PostgreSQL.',
    registers: [registry],
    collect: () => current().then(() => undefined),
  });
  async function current(): Promise<typeof last> {
    if (!query && now() - attemptedAt >= cacheMs) {
      attemptedAt = now();
      const started = read().then((counts) => {
        last = { counts, readAt: now() };
        lastRead.set(last.readAt / 1000);
      });
      query = started.catch(() => undefined).finally(() => (query = undefined));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Reading the state gauges took longer than ${timeoutMs} ms; answered with the last values.`)), timeoutMs);
      });
      waiting = Promise.race([started, timeout])
        .catch((error: unknown) => {
          failures.inc();
          onError(error);
        })
        .finally(() => {
          clearTimeout(timer);
          waiting = undefined;
        });
    }
    await waiting;
    return last;
  }
  const gauge = <T extends string>(config: { name: string; help: string; labelNames?: T[] }, fill: (gauge: Gauge<T>, counts: StateCounts, readAt: number) => void) => {
    const metric: Gauge<T> = new Gauge<T>({
      ...config,
      registers: [registry],
      async collect() {
        const state = await current();
        if (state) fill(metric, state.counts, state.readAt);
      },
    });
  };
  gauge({ name: 'change_requests', help: 'Changes by kind and status (pending, open, failed, superseded).', labelNames: ['kind', 'status'] }, (metric, counts) => {
    for (const { kind, status, count } of counts.changes) metric.set({ kind, status }, count);
  });
  gauge({ name: 'change_requests_oldest_pending_age_seconds', help: 'Age of the oldest pending change (0 when none is pending).' }, (metric, counts, readAt) => {
    metric.set(counts.oldestPendingAgeSeconds > 0 ? counts.oldestPendingAgeSeconds + (now() - readAt) / 1000 : 0);
  });
  gauge({ name: 'instances', help: 'Instances by state.', labelNames: ['state'] }, (metric, counts) => {
    for (const { state, count } of counts.instances) metric.set({ state }, count);
  });
  gauge({ name: 'instances_drifted', help: 'Instances whose spec on the base branch differs from the latest request (desired is not observed).' }, (metric, counts) => {
    metric.set(counts.drifted);
  });
  gauge({ name: 'instances_past_progress_deadline', help: 'Instances not ready within their progress deadline after their latest change merged (Ready=False, ProgressDeadlineExceeded).' }, (metric, counts) => {
    metric.set(counts.pastProgressDeadline);
  });
  gauge({ name: 'unknown_tenant_paths', help: 'Directories under tenants/<org>/apps/ on the base branch that no instance owns (unresolved).' }, (metric, counts) => {
    metric.set(counts.unknownTenantPaths);
  });
}

/** What registerGithubBudgetGauges reads (the github driver's GithubBudget, structurally). */
export interface GithubBudgetSource {
  observe(observer: { rateLimit(s: { resource: string; limit: number; remaining: number; reset: number }): void; write(): void; waited(ms: number): void }): void;
  writesLastHour(): number;
  tokens(): Promise<number>;
}

/**
 * The github driver's rate-limit budget (issue 13): GitHub's primary limit as its answers state
 * it, content-creating requests spent (writes per hour: increase(github_write_requests_total[1h])
 * across replicas, or github_writes_last_hour per replica), the shared write bucket, and the time
 * writes waited for it instead of earning a 403.
 */
export function registerGithubBudgetGauges(registry: Registry, budget: GithubBudgetSource, onError: (error: unknown) => void): void {
  const labelNames = ['resource'] as const;
  const limit = new Gauge({ name: 'github_rate_limit_limit', help: "GitHub's primary rate limit (x-ratelimit-limit of the last answer), by resource.", labelNames, registers: [registry] });
  const remaining = new Gauge({ name: 'github_rate_limit_remaining', help: 'Requests left before the primary limit resets (x-ratelimit-remaining of the last answer), by resource.', labelNames, registers: [registry] });
  const reset = new Gauge({ name: 'github_rate_limit_reset_timestamp_seconds', help: 'Unix time the primary limit resets (x-ratelimit-reset of the last answer), by resource.', labelNames, registers: [registry] });
  const writes = new Counter({ name: 'github_write_requests_total', help: 'Content-creating requests sent to GitHub (POST, PATCH, PUT, DELETE; GraphQL queries excluded), retries included.', registers: [registry] });
  const waited = new Counter({ name: 'github_write_wait_seconds_total', help: 'Time writes waited for the write budget before they were sent (instead of earning a secondary rate limit).', registers: [registry] });
  new Gauge({
    name: 'github_writes_last_hour',
    help: "This replica's content-creating requests in the last hour (GitHub allows about 500 an hour per installation).",
    registers: [registry],
    collect() {
      this.set(budget.writesLastHour());
    },
  });
  new Gauge({
    name: 'github_write_budget_tokens',
    help: 'Writes the shared budget would pay for now without waiting (the token bucket every replica spends from).',
    registers: [registry],
    async collect() {
      try {
        this.set(await budget.tokens());
      } catch (error) {
        onError(error);
      }
    },
  });
  budget.observe({
    rateLimit: (s) => {
      limit.set({ resource: s.resource }, s.limit);
      remaining.set({ resource: s.resource }, s.remaining);
      reset.set({ resource: s.resource }, s.reset);
    },
    write: () => writes.inc(),
    waited: (ms) => waited.inc(ms / 1000),
  });
}
