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
  /** Pushes of the local repository to GITOPS_LOCAL_PUSH_URL, by outcome. */
  gitopsPushes: Counter<'outcome'>;
  /** 1 while ref moves wait to be pushed (a push is due or failing), 0 when the remote has everything. */
  gitopsPushPending: Gauge;
  gitopsPushLastSuccess: Gauge;
}

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
    autoMergeAttempts: new Counter({
      name: 'gitops_auto_merge_attempts_total',
      help: 'Merge attempts of auto-merge pull requests, by outcome: merged, waiting (not mergeable yet), conflict (needs a person), error.',
      labelNames: ['outcome'],
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
  };
}
