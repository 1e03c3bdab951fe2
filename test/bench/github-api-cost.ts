import { notMeasured, type Benchmark, type Measurement } from './measurement.ts';

export const githubApiCost: Benchmark = {
  id: 'github-api-cost',
  title: 'GitHub API cost per instance',
  run(): Promise<Measurement[]> {
    return Promise.resolve(notMeasured('GitHub API cost per instance', ['(all)'], 'benchmark not written yet'));
  },
};
