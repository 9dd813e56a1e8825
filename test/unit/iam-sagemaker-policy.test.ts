import { readFileSync } from 'node:fs';
import * as path from 'node:path';

interface Statement {
  Sid: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string>>;
}
const read = (f: string): { Version: string; Statement: Statement[] } =>
  JSON.parse(readFileSync(path.resolve(__dirname, '../../docs', f), 'utf8'));
const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);

/** Every SageMaker call the AWS adapter makes, by the SDK command it sends. */
const ADAPTER = readFileSync(path.resolve(__dirname, '../../src/adapters/aws/sagemaker.ts'), 'utf8');

describe('docs/iam-sagemaker-policy.json (the CI caller)', () => {
  const policy = read('iam-sagemaker-policy.json');
  const actions = policy.Statement.flatMap((s) => list(s.Action));

  it('grants every SageMaker call the adapter sends, and no blanket action', () => {
    const sent = [...ADAPTER.matchAll(/new (\w+)Command\(/g)].map((m) => `sagemaker:${m[1]}`);
    expect(sent.length).toBeGreaterThan(10);
    const needed = sent.filter((a) => !/ModelPackage/.test(a)); // the registry mirror is optional
    for (const a of needed) expect(actions).toContain(a);
    for (const a of actions) expect(a).not.toMatch(/^(\*|sagemaker:\*|iam:\*)$/);
  });

  it('passes only the SageMaker role, and only to SageMaker', () => {
    const pass = policy.Statement.filter((s) => list(s.Action).includes('iam:PassRole'));
    expect(pass).toHaveLength(1);
    expect(list(pass[0].Resource)).toEqual(['arn:aws:iam::YOUR-ACCOUNT-ID:role/model-pipeline-sagemaker']);
    expect(pass[0].Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } });
  });
});

describe('docs/iam-sagemaker-execution-role.json (the role jobs and endpoints run as)', () => {
  it('writes only under the sagemaker/ prefix of the store, never the model folders', () => {
    const policy = read('iam-sagemaker-execution-role.json');
    const writes = policy.Statement.filter((s) => list(s.Action).some((a) => /^s3:(Put|Delete)/.test(a)));
    expect(writes.flatMap((s) => list(s.Resource))).toEqual(['arn:aws:s3:::YOUR-MODEL-BUCKET/sagemaker/*']);
  });
});
