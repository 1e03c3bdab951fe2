import { notMeasured, type Benchmark, type Measurement } from './measurement.ts';

export const endToEndLatency: Benchmark = {
  id: 'end-to-end',
  title: 'End-to-end latency',
  run(): Promise<Measurement[]> {
    return Promise.resolve(notMeasured('End-to-end latency', ['(all)'], 'benchmark not written yet'));
  },
};
