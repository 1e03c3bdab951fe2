/**
 * Something that runs beside the HTTP server (a worker, a reconciler, metering). The
 * composition root starts each one and, on SIGTERM, stops it after the server has drained:
 * `stop()` resolves once the task's in-flight work has finished.
 */
export interface BackgroundTask {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
}
