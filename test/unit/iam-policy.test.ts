import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

const root = path.resolve(__dirname, '../..');
const policy = JSON.parse(readFileSync(path.join(root, 'docs/iam-policy.json'), 'utf8')) as {
  Version: string;
  Statement: Statement[];
};
const list = (v: string | string[]): string[] => (Array.isArray(v) ? v : [v]);
const wildcard = (pattern: string): RegExp =>
  new RegExp(
    '^' +
      pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
    'i',
  );
const grants = (s: Statement, action: string): boolean =>
  s.Effect === 'Allow' && list(s.Action).some((a) => wildcard(a).test(action));
const allowing = (action: string): Statement[] => policy.Statement.filter((s) => grants(s, action));

describe('docs/iam-policy.json', () => {
  it('is a policy document with unique statement ids and no blanket actions', () => {
    expect(policy.Version).toBe('2012-10-17');
    const sids = policy.Statement.map((s) => s.Sid);
    expect(new Set(sids).size).toBe(sids.length);
    for (const s of policy.Statement) {
      for (const a of list(s.Action)) expect(a).not.toMatch(/^(\*|ec2:\*|s3:\*|iam:\*)$/);
    }
  });

  it('terminates only instances tagged model-pipeline=true', () => {
    const terminate = allowing('ec2:TerminateInstances');
    expect(terminate.length).toBeGreaterThan(0);
    for (const s of terminate) {
      expect(s.Condition?.StringEquals?.['ec2:ResourceTag/model-pipeline']).toBe('true');
      for (const r of list(s.Resource)) expect(r).toMatch(/:instance\/\*$/);
    }
  });

  it('launches only instances that carry the model-pipeline tag', () => {
    const run = allowing('ec2:RunInstances');
    const onInstances = run.filter((s) => list(s.Resource).some((r) => /:instance\//.test(r) || r === '*'));
    expect(onInstances.length).toBeGreaterThan(0);
    for (const s of onInstances)
      expect(s.Condition?.StringEquals?.['aws:RequestTag/model-pipeline']).toBe('true');
  });

  it('tags instances only while creating them, so no other instance can be made terminable', () => {
    for (const s of allowing('ec2:CreateTags')) {
      const onInstances = list(s.Resource).some((r) => /:(instance|volume)\//.test(r) || r === '*');
      if (!onInstances) continue;
      const actions = list(s.Condition?.StringEquals?.['ec2:CreateAction'] ?? []);
      expect(actions.length).toBeGreaterThan(0);
      expect(
        actions.every((a) => ['RunInstances', 'CreateKeyPair', 'CreateImage', 'CreateVolume'].includes(a)),
      ).toBe(true);
    }
  });

  it('passes only one role, only to EC2', () => {
    const pass = allowing('iam:PassRole');
    expect(pass).toHaveLength(1);
    expect(list(pass[0].Resource).every((r) => r.includes(':role/') && !r.endsWith('/*'))).toBe(true);
    expect(pass[0].Condition?.StringEquals?.['iam:PassedToService']).toBe('ec2.amazonaws.com');
  });

  it('allows every EC2 call the adapters make', () => {
    const dir = path.join(root, 'src/adapters/aws');
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(path.join(dir, f), 'utf8');
      if (!text.includes('@aws-sdk/client-ec2')) continue;
      for (const m of text.matchAll(/new (\w+)Command\(/g)) used.add(`ec2:${m[1]}`);
    }
    expect(used.has('ec2:RunInstances')).toBe(true);
    const missing = [...used].filter((a) => allowing(a).length === 0);
    expect(missing).toEqual([]);
  });
});
