import { notMeasured, type Benchmark, type Measurement } from './measurement.ts';

export const webhookIngest: Benchmark = {
  id: 'webhook-ingest',
  title: 'Webhook ingest',
  run(): Promise<Measurement[]> {
    return Promise.resolve(notMeasured('Webhook ingest', ['(all)'], 'benchmark not written yet'));
  },
};
