import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface Policy {
  Version: string;
  Statement: Statement[];
}

const root = path.resolve(__dirname, '../..');
const load = (file: string): Policy =>
  JSON.parse(readFileSync(path.join(root, 'docs', file), 'utf8')) as Policy;
const POLICIES = {
  ci: load('iam-policy.json'),
  prune: load('iam-prune-policy.json'),
  deploy: load('iam-deploy-policy.json'),
  readonly: load('iam-readonly-policy.json'),
};
const list = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];
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
const allowing = (p: Policy, action: string): Statement[] => p.Statement.filter((s) => grants(s, action));
/** Statements granting action on a resource ARN (the pattern in the policy matches the concrete ARN). */
const on = (p: Policy, action: string, arn: string): Statement[] =>
  allowing(p, action).filter((s) => list(s.Resource).some((r) => wildcard(r).test(arn)));

const IMAGE = 'arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0';
const SNAPSHOT = 'arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0';
const VOLUME = 'arn:aws:ec2:us-east-1:111122223333:volume/vol-0123456789abcdef0';
const INSTANCE = 'arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0';
const GROUP = 'arn:aws:ec2:us-east-1:111122223333:security-group/sg-0123456789abcdef0';
const RULE = 'arn:aws:ec2:us-east-1:111122223333:security-group-rule/sgr-0123456789abcdef0';
const TAGGED = { StringEquals: { 'ec2:ResourceTag/model-pipeline': 'true' } };
const REQUEST_TAGGED = { StringEquals: { 'aws:RequestTag/model-pipeline': 'true' } };

/**
 * Every statement of every policy, as reviewed. A change to any action, resource or condition fails here and
 * must be reviewed again (and docs/iam.md updated): scopes cannot widen unnoticed.
 */
const REVIEWED: Record<keyof typeof POLICIES, Record<string, [string[], string[], unknown?]>> = {
  ci: {
    ModelStoreBucket: [
      ['s3:ListBucket', 's3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
      ['arn:aws:s3:::YOUR-MODEL-BUCKET'],
    ],
    ModelStoreObjects: [
      [
        's3:GetObject',
        's3:PutObject',
        's3:DeleteObject',
        's3:AbortMultipartUpload',
        's3:ListMultipartUploadParts',
      ],
      ['arn:aws:s3:::YOUR-MODEL-BUCKET/*'],
    ],
    Ec2ReadOnly: [['ec2:Describe*'], ['*']],
    RunInstancesCreatesOnlyTaggedInstancesAndVolumes: [
      ['ec2:RunInstances'],
      ['arn:aws:ec2:*:*:instance/*', 'arn:aws:ec2:*:*:volume/*', 'arn:aws:ec2:*:*:spot-instances-request/*'],
      REQUEST_TAGGED,
    ],
    RunInstancesFromTheseResources: [
      ['ec2:RunInstances'],
      [
        'arn:aws:ec2:*::image/*',
        'arn:aws:ec2:*:*:image/*',
        'arn:aws:ec2:*:*:subnet/*',
        'arn:aws:ec2:*:*:security-group/*',
        'arn:aws:ec2:*:*:network-interface/*',
        'arn:aws:ec2:*:*:key-pair/*',
      ],
    ],
    TagOnlyWhileCreating: [
      ['ec2:CreateTags'],
      [
        'arn:aws:ec2:*:*:instance/*',
        'arn:aws:ec2:*:*:volume/*',
        'arn:aws:ec2:*:*:spot-instances-request/*',
        'arn:aws:ec2:*:*:network-interface/*',
        'arn:aws:ec2:*:*:key-pair/*',
        'arn:aws:ec2:*:*:security-group/*',
        'arn:aws:ec2:*:*:security-group-rule/*',
        'arn:aws:ec2:*::image/*',
        'arn:aws:ec2:*:*:image/*',
        'arn:aws:ec2:*::snapshot/*',
        'arn:aws:ec2:*:*:snapshot/*',
      ],
      {
        StringEquals: {
          'ec2:CreateAction': [
            'RunInstances',
            'CreateKeyPair',
            'CreateSecurityGroup',
            'AuthorizeSecurityGroupIngress',
            'CreateImage',
            'CopyImage',
          ],
        },
      },
    ],
    TerminateOnlyTaggedInstances: [['ec2:TerminateInstances'], ['arn:aws:ec2:*:*:instance/*'], TAGGED],
    OperateOnlyTaggedInstances: [
      ['ec2:GetConsoleOutput', 'ec2:StopInstances', 'ec2:ModifyInstanceAttribute', 'ec2:CreateImage'],
      ['arn:aws:ec2:*:*:instance/*'],
      TAGGED,
    ],
    CreateImagesOnlyTaggedAtCreation: [
      ['ec2:CreateImage'],
      [
        'arn:aws:ec2:*::image/*',
        'arn:aws:ec2:*:*:image/*',
        'arn:aws:ec2:*::snapshot/*',
        'arn:aws:ec2:*:*:snapshot/*',
      ],
      REQUEST_TAGGED,
    ],
    CopyImageOnlyTaggedAtCreation: [
      ['ec2:CopyImage'],
      ['arn:aws:ec2:*::image/*', 'arn:aws:ec2:*:*:image/*'],
      REQUEST_TAGGED,
    ],
    ShareOnlyTaggedImages: [
      ['ec2:ModifyImageAttribute'],
      ['arn:aws:ec2:*::image/*', 'arn:aws:ec2:*:*:image/*'],
      TAGGED,
    ],
    RunKeyPairs: [
      ['ec2:CreateKeyPair', 'ec2:DeleteKeyPair'],
      ['arn:aws:ec2:*:*:key-pair/model-pipeline-*', 'arn:aws:ec2:*:*:key-pair/packer_*'],
    ],
    CreateOnlyTaggedSecurityGroups: [
      ['ec2:CreateSecurityGroup'],
      ['arn:aws:ec2:*:*:security-group/*'],
      REQUEST_TAGGED,
    ],
    CreateSecurityGroupsInAnyVpc: [['ec2:CreateSecurityGroup'], ['arn:aws:ec2:*:*:vpc/*']],
    ChangeOnlyTaggedSecurityGroups: [
      ['ec2:AuthorizeSecurityGroupIngress', 'ec2:RevokeSecurityGroupIngress', 'ec2:DeleteSecurityGroup'],
      ['arn:aws:ec2:*:*:security-group/*'],
      TAGGED,
    ],
    AddOnlyTaggedIngressRules: [
      ['ec2:AuthorizeSecurityGroupIngress'],
      ['arn:aws:ec2:*:*:security-group-rule/*'],
      REQUEST_TAGGED,
    ],
    RemoveOnlyTaggedIngressRules: [
      ['ec2:RevokeSecurityGroupIngress'],
      ['arn:aws:ec2:*:*:security-group-rule/*'],
      TAGGED,
    ],
    PassOnlyTheTrainingRole: [
      ['iam:PassRole'],
      ['arn:aws:iam::YOUR-ACCOUNT-ID:role/YOUR-TRAINING-INSTANCE-ROLE'],
      { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    ],
  },
  prune: {
    DescribeImages: [['ec2:DescribeImages', 'ec2:DescribeSnapshots'], ['*']],
    DeregisterOnlyTaggedImages: [
      ['ec2:DeregisterImage', 'ec2:DeleteSnapshot'],
      [
        'arn:aws:ec2:*::image/*',
        'arn:aws:ec2:*:*:image/*',
        'arn:aws:ec2:*::snapshot/*',
        'arn:aws:ec2:*:*:snapshot/*',
      ],
      TAGGED,
    ],
  },
  deploy: {
    ModelStoreBucket: [['s3:ListBucket', 's3:GetBucketLocation'], ['arn:aws:s3:::YOUR-MODEL-BUCKET']],
    ReadModels: [['s3:GetObject'], ['arn:aws:s3:::YOUR-MODEL-BUCKET/*']],
    RecordDeployments: [
      ['s3:PutObject'],
      [
        'arn:aws:s3:::YOUR-MODEL-BUCKET/_registry/deployments/*',
        'arn:aws:s3:::YOUR-MODEL-BUCKET/*/_registry/deployments/*',
      ],
    ],
  },
  readonly: {
    ModelStoreBucket: [['s3:ListBucket', 's3:GetBucketLocation'], ['arn:aws:s3:::YOUR-MODEL-BUCKET']],
    ReadModels: [['s3:GetObject'], ['arn:aws:s3:::YOUR-MODEL-BUCKET/*']],
    Ec2ReadOnly: [['ec2:DescribeInstances', 'ec2:DescribeImages'], ['*']],
  },
};

describe.each(Object.entries(POLICIES))('docs IAM policy %s', (name, policy) => {
  it('is a policy document of Allow statements with unique ids and no blanket actions', () => {
    expect(policy.Version).toBe('2012-10-17');
    const sids = policy.Statement.map((s) => s.Sid);
    expect(new Set(sids).size).toBe(sids.length);
    for (const s of policy.Statement) {
      expect(s.Effect).toBe('Allow');
      for (const a of list(s.Action)) expect(a).not.toMatch(/^(\*|ec2:\*|s3:\*|iam:\*)$/);
    }
  });

  it('has exactly the reviewed actions, resources and conditions in every statement', () => {
    const actual = Object.fromEntries(
      policy.Statement.map((s) => [
        s.Sid!,
        s.Condition ? [list(s.Action), list(s.Resource), s.Condition] : [list(s.Action), list(s.Resource)],
      ]),
    );
    expect(actual).toEqual(REVIEWED[name as keyof typeof POLICIES]);
  });
});

describe('what the policies grant (semantic checks, independent of statement names)', () => {
  const all = Object.values(POLICIES);

  it('tags instances, volumes, key pairs and security groups only while creating them', () => {
    for (const p of all)
      for (const arn of [INSTANCE, VOLUME, GROUP, RULE])
        for (const s of on(p, 'ec2:CreateTags', arn))
          expect(list(s.Condition?.StringEquals?.['ec2:CreateAction']).length).toBeGreaterThan(0);
  });

  it('no policy can tag an existing image or snapshot: only in the CreateImage or CopyImage call', () => {
    for (const p of all)
      for (const arn of [IMAGE, SNAPSHOT]) {
        for (const s of on(p, 'ec2:CreateTags', arn)) {
          // a CreateTags statement without ec2:CreateAction (or with any other condition) tags existing images
          expect(Object.keys(s.Condition ?? {})).toEqual(['StringEquals']);
          expect(Object.keys(s.Condition!.StringEquals)).toEqual(['ec2:CreateAction']);
          const atCreation = list(s.Condition!.StringEquals['ec2:CreateAction']);
          expect(atCreation.filter((a) => /Image|Snapshot/.test(a))).toEqual(['CreateImage', 'CopyImage']);
        }
      }
    expect(on(POLICIES.ci, 'ec2:CreateTags', IMAGE)).toHaveLength(1);
  });

  it('images and their snapshots are created (CreateImage, CopyImage) only with the marker in the call', () => {
    for (const p of all)
      for (const a of ['ec2:CreateImage', 'ec2:CopyImage'])
        for (const arn of [IMAGE, SNAPSHOT])
          for (const s of on(p, a, arn)) expect(s.Condition).toEqual(REQUEST_TAGGED);
  });

  it('deregisters, deletes and shares only tagged images and snapshots', () => {
    for (const p of all)
      for (const a of [
        'ec2:DeregisterImage',
        'ec2:DeleteSnapshot',
        'ec2:ModifyImageAttribute',
        'ec2:ModifySnapshotAttribute',
      ])
        for (const s of allowing(p, a)) expect(s.Condition).toEqual(TAGGED);
  });

  it('snapshots nothing directly, and images only tagged instances', () => {
    for (const p of all) {
      expect(allowing(p, 'ec2:CreateSnapshot')).toEqual([]);
      expect(allowing(p, 'ec2:CreateSnapshots')).toEqual([]);
      expect(allowing(p, 'ec2:RegisterImage')).toEqual([]);
      expect(on(p, 'ec2:CreateImage', VOLUME)).toEqual([]);
      for (const s of on(p, 'ec2:CreateImage', INSTANCE)) expect(s.Condition).toEqual(TAGGED);
      for (const s of allowing(p, 'ec2:CopyImage')) expect(s.Condition).toEqual(REQUEST_TAGGED);
    }
  });

  it('changes and deletes only tagged security groups, and creates only tagged ones', () => {
    for (const p of all) {
      for (const a of [
        'ec2:AuthorizeSecurityGroupIngress',
        'ec2:RevokeSecurityGroupIngress',
        'ec2:AuthorizeSecurityGroupEgress',
        'ec2:RevokeSecurityGroupEgress',
        'ec2:DeleteSecurityGroup',
        'ec2:ModifySecurityGroupRules',
      ])
        for (const s of on(p, a, GROUP)) expect(s.Condition).toEqual(TAGGED);
      for (const s of on(p, 'ec2:CreateSecurityGroup', GROUP)) expect(s.Condition).toEqual(REQUEST_TAGGED);
    }
  });

  it('adds only ingress rules tagged in the same call (ssh-cidr) and removes only tagged rules', () => {
    for (const p of all) {
      for (const s of on(p, 'ec2:AuthorizeSecurityGroupIngress', RULE))
        expect(s.Condition).toEqual(REQUEST_TAGGED);
      for (const a of ['ec2:RevokeSecurityGroupIngress', 'ec2:ModifySecurityGroupRules'])
        for (const s of on(p, a, RULE)) expect(s.Condition).toEqual(TAGGED);
      for (const s of on(p, 'ec2:CreateTags', RULE))
        expect(s.Condition?.StringEquals?.['ec2:CreateAction']).toContain('AuthorizeSecurityGroupIngress');
    }
    // the tool's own calls are covered: train adds and removes its rule
    expect(on(POLICIES.ci, 'ec2:AuthorizeSecurityGroupIngress', RULE)).toHaveLength(1);
    expect(on(POLICIES.ci, 'ec2:RevokeSecurityGroupIngress', RULE)).toHaveLength(1);
  });

  it('terminates and launches only tagged instances; passes one role, only to EC2', () => {
    for (const p of all) {
      for (const s of allowing(p, 'ec2:TerminateInstances')) expect(s.Condition).toEqual(TAGGED);
      for (const s of on(p, 'ec2:RunInstances', INSTANCE)) expect(s.Condition).toEqual(REQUEST_TAGGED);
    }
    const pass = allowing(POLICIES.ci, 'iam:PassRole');
    expect(pass).toHaveLength(1);
    expect(list(pass[0].Resource).every((r) => r.includes(':role/') && !r.includes('*'))).toBe(true);
    for (const p of [POLICIES.prune, POLICIES.deploy, POLICIES.readonly])
      expect(allowing(p, 'iam:PassRole')).toEqual([]);
  });

  it('the deploy role reads models and writes only deployment records; read-only writes nothing', () => {
    const writes = /^(s3:(Put|Delete|Abort|Restore)|ec2:(?!Describe|Get)|iam:)/;
    for (const s of POLICIES.readonly.Statement)
      for (const a of list(s.Action)) expect(a).not.toMatch(writes);
    for (const s of POLICIES.deploy.Statement)
      for (const a of list(s.Action)) {
        expect(a).not.toMatch(/^(ec2|iam):/);
        if (writes.test(a))
          expect(list(s.Resource).every((r) => r.endsWith('/_registry/deployments/*'))).toBe(true);
      }
  });

  it('the CI and prune policies together allow every EC2 call the adapters make', () => {
    const dir = path.join(root, 'src/adapters/aws');
    const used = new Set<string>();
    for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const text = readFileSync(path.join(dir, f), 'utf8');
      if (!text.includes('@aws-sdk/client-ec2')) continue;
      for (const m of text.matchAll(/new (\w+)Command\(/g)) used.add(`ec2:${m[1]}`);
    }
    expect(used.has('ec2:RunInstances')).toBe(true);
    const missing = [...used].filter(
      (a) => allowing(POLICIES.ci, a).length + allowing(POLICIES.prune, a).length === 0,
    );
    expect(missing).toEqual([]);
  });
});
