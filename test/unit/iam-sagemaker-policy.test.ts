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

/** Every SageMaker call the AWS adapter makes, by the SDK command it sends or the paginator it walks. */
const ADAPTER = readFileSync(path.resolve(__dirname, '../../src/adapters/aws/sagemaker.ts'), 'utf8');
const LOGS = readFileSync(path.resolve(__dirname, '../../src/adapters/aws/cloudwatch-logs.ts'), 'utf8');
const calls = (src: string, service: string): string[] =>
  [...src.matchAll(/new (\w+)Command\(|paginate(\w+)\(/g)].map((m) => `${service}:${m[1] ?? m[2]}`);

describe('docs/iam-sagemaker-policy.json (the CI caller)', () => {
  const policy = read('iam-sagemaker-policy.json');
  const actions = policy.Statement.flatMap((s) => list(s.Action));

  it('grants every SageMaker and CloudWatch Logs call the adapters send, and no blanket action', () => {
    const sent = [...calls(ADAPTER, 'sagemaker'), ...calls(LOGS, 'logs')];
    expect(sent.length).toBeGreaterThan(15);
    expect(sent).toEqual(
      expect.arrayContaining([
        'sagemaker:StopTrainingJob',
        'sagemaker:ListTrainingJobs',
        'sagemaker:ListTags',
        'sagemaker:UpdateModelPackage',
        'logs:GetLogEvents',
        'logs:DescribeLogStreams',
      ]),
    );
    for (const a of sent) expect(actions).toContain(a);
    for (const a of actions) expect(a).not.toMatch(/^(\*|sagemaker:\*|logs:\*|iam:\*)$/);
  });

  it('scopes StopTrainingJob like the other training-job actions: only the tool’s jobs (mp-*)', () => {
    const jobs = policy.Statement.find((s) => list(s.Action).includes('sagemaker:StopTrainingJob'))!;
    expect(list(jobs.Action)).toEqual(
      expect.arrayContaining(['sagemaker:CreateTrainingJob', 'sagemaker:DescribeTrainingJob']),
    );
    expect(list(jobs.Resource)).toEqual(['arn:aws:sagemaker:*:YOUR-ACCOUNT-ID:training-job/mp-*']);
    const logs = policy.Statement.find((s) => list(s.Action).includes('logs:GetLogEvents'))!;
    expect(list(logs.Resource)).toEqual([
      'arn:aws:logs:*:YOUR-ACCOUNT-ID:log-group:/aws/sagemaker/TrainingJobs:*',
    ]);
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
