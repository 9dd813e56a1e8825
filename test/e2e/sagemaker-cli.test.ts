import { spawnSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import * as path from 'node:path';
import {
  DescribeEndpointCommand,
  DescribeModelPackageCommand,
  ListModelPackagesCommand,
  DescribeTrainingJobCommand,
  ListEndpointConfigsCommand,
  ListModelsCommand,
  ListTagsCommand,
  ListTrainingJobsCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { registryKeys } from '../../src/core/registry';
import { motoEndpoint, newBucket, s3Client, TEST_AWS_ENV } from '../helpers/aws';
import { TempRepo } from '../helpers/git-repo';

/*
 * The SageMaker engine through the bundled CLI (dist/cli/index.js, rebuilt by `npm run bundle`) on moto 5.2.1.
 * What moto does not do: its training jobs complete at once and leave no model.tar.gz, StopTrainingJob and
 * UpdateEndpoint are not implemented. Those paths (a job that runs, stop on cancel, endpoint update and
 * rollback) are covered on a fake of the port in test/integration/deploy-fake.test.ts.
 */

const CLI = path.resolve(__dirname, '../../dist/cli/index.js');
const POST = path.resolve(__dirname, '../../dist/post/index.js');
const DEMO = path.resolve(__dirname, '../../examples/demo-repo');
const IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1';
const ROLE = 'arn:aws:iam::123456789012:role/model-pipeline-sagemaker';

function sm(): SageMakerClient {
  return new SageMakerClient({ region: 'us-east-1', endpoint: motoEndpoint() });
}

function cli(cwd: string, args: string[], extraEnv: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      ...extraEnv,
      ...TEST_AWS_ENV,
      MODEL_PIPELINE_NO_CODE_CACHE: '1',
      MODEL_PIPELINE_S3_ENDPOINT: motoEndpoint(),
      MODEL_PIPELINE_SAGEMAKER_ENDPOINT_URL: motoEndpoint(),
      MODEL_PIPELINE_SAGEMAKER_POLL: '1s',
      MODEL_PIPELINE_LOGS_ENDPOINT_URL: motoEndpoint(),
      MODEL_PIPELINE_EC2_ENDPOINT: motoEndpoint(),
      ...extraEnv,
    },
  });
  // node 20: the AWS SDK warns that later releases need node 22; not ours, left out of the checks
  const stderr = r.stderr.replace(
    // each bundled copy of the SDK (dist/lib and its vendor files) warns once; node adds its hint to the first
    /\(node:\d+\) Warning: NodeVersionSupportWarning[\s\S]*?https:\/\/a\.co\/\S+\n(\(Use `node --trace-warnings[^\n]*\n)?/g,
    '',
  );
  return { code: r.status, stdout: r.stdout, stderr };
}

async function jobNames(): Promise<string[]> {
  const r = await sm().send(new ListTrainingJobsCommand({ MaxResults: 100 }));
  return (r.TrainingJobSummaries ?? []).map((j) => j.TrainingJobName!);
}

async function keys(bucket: string): Promise<string[]> {
  const r = await s3Client().send(new ListObjectsV2Command({ Bucket: bucket }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

function demoRepo(): TempRepo {
  const repo = new TempRepo('mp-sm-cli-');
  cpSync(DEMO, repo.dir, { recursive: true });
  repo.write(
    'search-config.toml',
    'version = "1.0.0"\nname = "ranker"\n\n[hyperparameters]\nepochs = 3\nlr = 0.01\n',
  );
  repo.commit('demo');
  return repo;
}

describe('train with backend sagemaker, through the bundled CLI on moto', () => {
  it('creates one training job with the request the options describe, and polls it to its end', async () => {
    const bucket = await newBucket('sm-train');
    await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: 'data/train.zip', Body: 'PK' }));
    const repo = demoRepo();
    const before = await jobNames();
    const r = cli(repo.dir, [
      'train',
      '--backend',
      'sagemaker',
      '--bucket',
      bucket,
      '--sagemaker-image',
      IMAGE,
      '--sagemaker-role',
      ROLE,
      '--sagemaker-instance-type',
      'ml.g5.2xlarge',
      '--sagemaker-instance-count',
      '4',
      '--sagemaker-volume-gib',
      '250',
      '--spot',
      '--max-runtime',
      '2h',
      '--max-wait',
      '3h',
      '--data-key',
      'data/train.zip',
    ]);
    // moto completes the job at once with no model.tar.gz: the run says so and writes no model
    expect(r.stderr).toMatch(
      /training job mp-ranker-1-0-0-[0-9a-f]{7}-[0-9a-f]{6} completed but left no s3:\/\/.+\/model\.tar\.gz/,
    );
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/training job mp-ranker-\S+: Completed/);
    const created = (await jobNames()).filter((n) => !before.includes(n));
    expect(created).toHaveLength(1);
    const job = await sm().send(new DescribeTrainingJobCommand({ TrainingJobName: created[0] }));
    const sha7 = repo.head().slice(0, 7);
    const table: [string, unknown, unknown][] = [
      ['image', job.AlgorithmSpecification?.TrainingImage, IMAGE],
      ['role', job.RoleArn, ROLE],
      ['instance type', job.ResourceConfig?.InstanceType, 'ml.g5.2xlarge'],
      ['instance count', job.ResourceConfig?.InstanceCount, 4],
      ['volume', job.ResourceConfig?.VolumeSizeInGB, 250],
      ['spot', job.EnableManagedSpotTraining, true],
      [
        'stopping condition',
        job.StoppingCondition,
        { MaxRuntimeInSeconds: 7200, MaxWaitTimeInSeconds: 10800 },
      ],
      [
        'checkpoints',
        job.CheckpointConfig,
        {
          S3Uri: `s3://${bucket}/sagemaker/checkpoints/ranker/1.0.0-${sha7}/`,
          LocalPath: '/opt/ml/checkpoints',
        },
      ],
      [
        'channels',
        job.InputDataConfig?.map((c) => [c.ChannelName, c.DataSource?.S3DataSource?.S3Uri]),
        [['training', `s3://${bucket}/data/train.zip`]],
      ],
      [
        'hyperparameters',
        { epochs: job.HyperParameters?.epochs, lr: job.HyperParameters?.lr },
        { epochs: '3', lr: '0.01' },
      ],
      [
        'source archive',
        job.HyperParameters?.sagemaker_submit_directory,
        `s3://${bucket}/sagemaker/jobs/${created[0]}/source.tar.gz`,
      ],
      ['output', job.OutputDataConfig?.S3OutputPath, `s3://${bucket}/sagemaker/jobs/${created[0]}/output/`],
    ];
    for (const [what, got, want] of table) expect({ what, got }).toEqual({ what, got: want });
    const tags = await sm().send(new ListTagsCommand({ ResourceArn: job.TrainingJobArn }));
    expect(tags.Tags).toEqual(
      expect.arrayContaining([{ Key: 'model-pipeline:model-prefix', Value: `ranker/1.0.0-${sha7}/` }]),
    );
    // the source archive is in the store; the model folder is not
    const stored = await keys(bucket);
    expect(stored).toContain(`sagemaker/jobs/${created[0]}/source.tar.gz`);
    expect(stored.filter((k) => k.startsWith('ranker/'))).toEqual([]);
  });

  it.each([
    ['no role', ['--sagemaker-image', IMAGE], /^sagemaker-role is required/],
    [
      'image without registry',
      ['--sagemaker-image', 'train:1', '--sagemaker-role', ROLE],
      /^sagemaker-image "train:1" is not an ECR image URI/,
    ],
    [
      'instance count 0',
      ['--sagemaker-image', IMAGE, '--sagemaker-role', ROLE, '--sagemaker-instance-count', '0'],
      /^sagemaker-instance-count must be at least 1, got 0/,
    ],
  ])('bad input (%s): one line, exit 2, nothing created', async (_what, args, message) => {
    const bucket = await newBucket('sm-bad');
    const repo = demoRepo();
    const before = await jobNames();
    const r = cli(repo.dir, [
      'train',
      '--backend',
      'sagemaker',
      '--bucket',
      bucket,
      '--data-key',
      'none',
      ...args,
    ]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0].replace(/^error: /, '')).toMatch(message);
    expect(await jobNames()).toEqual(before);
    expect(await keys(bucket)).toEqual([]);
  });
});

describe('deploy, endpoint-status, undeploy through the bundled CLI on moto', () => {
  it('creates the endpoint for the promoted model, reports it, records the deployment and deletes it all', async () => {
    const bucket = await newBucket('sm-deploy');
    const repo = demoRepo();
    const sha7 = repo.head().slice(0, 7);
    const prefix = `ranker/1.0.0-${sha7}/`;
    const base = ['--bucket', bucket];
    // a model trained on the instance engine's local cousin is not needed: put a model folder, then promote
    const zip = Buffer.from('PK\u0005\u0006' + '\u0000'.repeat(18), 'binary');
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(zip).digest('hex');
    await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}model.zip`, Body: zip }));
    const manifest = {
      schemaVersion: 1,
      model: { name: 'ranker', version: '1.0.0', sha: repo.head() },
      files: [{ name: 'model.zip', size: zip.length, sha256: sha }],
    };
    await s3Client().send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}manifest.json`, Body: JSON.stringify(manifest) }),
    );
    for (const env of ['development', 'staging']) {
      const p = cli(repo.dir, ['promote', ...base, '--model-prefix', prefix, '--environment', env]);
      // the folder above was put by hand with no store checksums: promote says it hashes the bytes instead
      expect(p.stderr.trim()).toMatch(
        /^\S+: the manifest records no store checksums for 1 of 1 files .*hashing them$/,
      );
      expect(p.code).toBe(0);
    }
    const deployArgs = [
      ...base,
      '--environment',
      'staging',
      '--serving-image',
      '123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:2',
      '--sagemaker-role',
      ROLE,
      '--endpoint-instance-count',
      '2',
    ];
    // bad input first: one line, exit 2, nothing is created
    const badInputs: [string[], RegExp][] = [
      [['--serving-image', 'serve:2'], /^(error: )?serving-image "serve:2" is not an ECR image URI/],
      [['--endpoint-instance-count', '0'], /^(error: )?endpoint-instance-count must be at least 1, got 0/],
      [['--sagemaker-role', ''], /^(error: )?sagemaker-role is required/],
    ];
    for (const [args, message] of badInputs) {
      const bad = cli(repo.dir, ['deploy', ...deployArgs, ...args]);
      expect(bad.stderr.trim()).toMatch(message);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect((await sm().send(new ListModelsCommand({}))).Models ?? []).toEqual([]);
    expect((await sm().send(new ListEndpointConfigsCommand({}))).EndpointConfigs ?? []).toEqual([]);

    const d = cli(repo.dir, ['deploy', ...deployArgs, '--json']);
    expect(d.stderr).not.toMatch(/error/i);
    expect(d.code).toBe(0);
    const out = JSON.parse(d.stdout).outputs as Record<string, string>;
    expect(out['endpoint-name']).toBe('ranker-staging');
    expect(out['model-prefix']).toBe(prefix);
    const e = await sm().send(new DescribeEndpointCommand({ EndpointName: 'ranker-staging' }));
    expect(e.EndpointStatus).toBe('InService');
    expect(e.EndpointConfigName).toBe(out['endpoint-config']);
    expect(e.ProductionVariants?.[0]).toMatchObject({ VariantName: 'primary' });
    const models = (await sm().send(new ListModelsCommand({}))).Models ?? [];
    expect(models.map((m) => m.ModelName)).toEqual([out['endpoint-config']]);
    expect(out['deployment-record']).toMatch(new RegExp(`^s3://${bucket}/ranker/.+staging.+`));

    const s = cli(repo.dir, ['endpoint-status', ...base, '--environment', 'staging', '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout).outputs).toEqual({
      'endpoint-name': 'ranker-staging',
      'endpoint-status': 'InService',
      'endpoint-config': out['endpoint-config'],
    });

    const u = cli(repo.dir, ['undeploy', ...base, '--environment', 'staging']);
    expect(u.stderr).toContain('endpoint ranker-staging deleted');
    expect(u.code).toBe(0);
    expect((await sm().send(new ListModelsCommand({}))).Models ?? []).toEqual([]);
    expect((await sm().send(new ListEndpointConfigsCommand({}))).EndpointConfigs ?? []).toEqual([]);

    // unknown endpoint: one line, exit 2
    for (const command of ['endpoint-status', 'undeploy']) {
      const gone = cli(repo.dir, [command, ...base, '--endpoint-name', 'ranker-staging']);
      expect(gone.code).toBe(2);
      expect(gone.stderr.trim()).toMatch(/^(error: )?endpoint ranker-staging does not exist/);
      expect(gone.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

/** A model folder put by hand (manifest with model.zip's sha256), as the deploy test does. */
async function handMadeModel(
  bucket: string,
  prefix: string,
  sha: string,
  version = '1.0.0',
): Promise<string> {
  const zip = Buffer.from('PK\u0005\u0006' + '\u0000'.repeat(18), 'binary');
  const { createHash } = await import('node:crypto');
  const digest = createHash('sha256').update(zip).digest('hex');
  await s3Client().send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}model.zip`, Body: zip }));
  const manifest = {
    schemaVersion: 1,
    model: { name: 'ranker', version, sha },
    files: [{ name: 'model.zip', size: zip.length, sha256: digest }],
  };
  await s3Client().send(
    new PutObjectCommand({ Bucket: bucket, Key: `${prefix}manifest.json`, Body: JSON.stringify(manifest) }),
  );
  return digest;
}

describe('promote mirrors into a SageMaker model package group (sagemaker-registry), through the bundled CLI on moto', () => {
  it('one package version per model folder: created, left alone on re-promote, updated per environment, Approved in production', async () => {
    const bucket = await newBucket('sm-registry');
    const repo = demoRepo();
    const prefix = `ranker/1.0.0-${repo.head().slice(0, 7)}/`;
    const digest = await handMadeModel(bucket, prefix, repo.head());
    const group = `ranker-${bucket.slice(-12)}`;
    const promote = (env: string, extra: string[] = [], extraEnv: Record<string, string> = {}) =>
      cli(
        repo.dir,
        [
          'promote',
          '--bucket',
          bucket,
          '--model-prefix',
          prefix,
          '--environment',
          env,
          '--sagemaker-registry',
          '--model-package-group',
          group,
          ...extra,
        ],
        extraEnv,
      );
    const packages = async () => {
      const r = await sm().send(new ListModelPackagesCommand({ ModelPackageGroupName: group }));
      return Promise.all(
        (r.ModelPackageSummaryList ?? []).map((p) =>
          sm().send(new DescribeModelPackageCommand({ ModelPackageName: p.ModelPackageArn })),
        ),
      );
    };

    // bad input: one line, exit 2, nothing promoted and nothing registered
    const bad = promote('development', ['--serving-image', 'serve:1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^(error: )?serving-image "serve:1" is not an ECR image URI/);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect((await keys(bucket)).filter((k) => !k.startsWith(prefix))).toEqual([]);

    const dev = promote('development', [
      '--serving-image',
      '123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1',
    ]);
    expect(dev.code).toBe(0);
    expect(dev.stderr).toMatch(
      /SageMaker model package created: arn:aws:sagemaker:\S+ \(group \S+, development, PendingManualApproval\)/,
    );
    let [p] = await packages();
    expect(p.ModelApprovalStatus).toBe('PendingManualApproval');
    expect(p.ModelPackageDescription).toBe(`model-pipeline ${prefix}`);
    expect(p.CustomerMetadataProperties).toMatchObject({
      'model-pipeline:environment': 'development',
      'model-pipeline:environments': 'development',
      'model-pipeline:prefix': prefix,
      'model-pipeline:version': '1.0.0',
      'model-pipeline:model-uri': `s3://${bucket}/${prefix}`,
      'model-pipeline:model-sha256': digest,
    });
    expect(p.InferenceSpecification?.Containers?.[0]?.Image).toBe(
      '123456789012.dkr.ecr.us-east-1.amazonaws.com/serve:1',
    );

    // re-promote: nothing changes in the store, nothing in the registry
    const again = promote('development');
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/SageMaker model package unchanged: /);
    expect(await packages()).toHaveLength(1);

    expect(promote('staging').code).toBe(0);
    const prod = promote('production');
    expect(prod.code).toBe(0);
    expect(prod.stderr).toMatch(/SageMaker model package updated: \S+ \(group \S+, production, Approved\)/);
    const all = await packages();
    expect(all).toHaveLength(1);
    [p] = all;
    expect(p.ModelApprovalStatus).toBe('Approved');
    expect(p.CustomerMetadataProperties).toMatchObject({
      'model-pipeline:environment': 'production',
      'model-pipeline:environments': 'development,staging,production',
    });
  });

  it('demote mirrors the rollback: the restored version is current again, the rolled-back one Rejected', async () => {
    const bucket = await newBucket('sm-demote');
    const repo = demoRepo();
    const a = `ranker/1.0.0-${repo.head().slice(0, 7)}/`;
    await handMadeModel(bucket, a, repo.head());
    repo.write('search-config.toml', 'version = "1.0.1"\nname = "ranker"\n');
    const shaB = repo.commit('1.0.1');
    const b = `ranker/1.0.1-${shaB.slice(0, 7)}/`;
    await handMadeModel(bucket, b, shaB, '1.0.1');
    const group = `ranker-${bucket.slice(-12)}`;
    const registry = ['--bucket', bucket, '--sagemaker-registry', '--model-package-group', group];
    for (const prefix of [a, b])
      for (const env of ['development', 'staging', 'production'])
        expect(
          cli(repo.dir, ['promote', ...registry, '--model-prefix', prefix, '--environment', env]).code,
        ).toBe(0);

    const r = cli(repo.dir, ['demote', ...registry, '--environment', 'production']);
    expect(r.stderr).not.toMatch(/warn|error/i);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /SageMaker model package updated: \S+ \(rolled back out of production, Rejected\)/,
    );
    const list = await sm().send(new ListModelPackagesCommand({ ModelPackageGroupName: group }));
    const byPrefix = new Map<string, { approval?: string; metadata: Record<string, string> }>();
    for (const p of list.ModelPackageSummaryList ?? []) {
      const d = await sm().send(new DescribeModelPackageCommand({ ModelPackageName: p.ModelPackageArn }));
      const meta = d.CustomerMetadataProperties ?? {};
      byPrefix.set(meta['model-pipeline:prefix'], { approval: d.ModelApprovalStatus, metadata: meta });
    }
    expect(byPrefix.get(b)).toMatchObject({
      approval: 'Rejected',
      metadata: { 'model-pipeline:demoted-from': 'production' },
    });
    expect(byPrefix.get(a)).toMatchObject({
      approval: 'Approved',
      metadata: { 'model-pipeline:environment': 'production' },
    });
    expect(byPrefix.get(a)?.metadata['model-pipeline:demoted-from']).toBeUndefined();
  });

  it('a mirror that fails warns, and the promotion in the store stands (exit 0)', async () => {
    const bucket = await newBucket('sm-registry-down');
    const repo = demoRepo();
    const prefix = `ranker/1.0.0-${repo.head().slice(0, 7)}/`;
    await handMadeModel(bucket, prefix, repo.head());
    // nothing listens there: every SageMaker call fails (after the SDK's retries)
    const r = cli(
      repo.dir,
      [
        'promote',
        '--bucket',
        bucket,
        '--model-prefix',
        prefix,
        '--environment',
        'development',
        '--sagemaker-registry',
      ],
      { MODEL_PIPELINE_SAGEMAKER_ENDPOINT_URL: 'http://127.0.0.1:9' },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /the promotion stands, but mirroring it into the SageMaker model package group ranker failed: /,
    );
    expect(r.stdout + r.stderr).toContain(`promoted ${prefix} to development`);
    expect(await keys(bucket)).toContain(registryKeys.pointer('ranker/', 'development'));
  });
});

describe('sweep finds a run’s training jobs on moto (ListTrainingJobs + ListTags)', () => {
  it('reports the run’s job with what it would do, and no job of another run', async () => {
    const bucket = await newBucket('sm-sweep');
    const repo = demoRepo();
    const runId = String(Date.now());
    const gh = (id: string) => ({
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'org/repo',
      GITHUB_RUN_ID: id,
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: 'train',
    });
    const before = await jobNames();
    const args = [
      'train',
      '--backend',
      'sagemaker',
      '--bucket',
      bucket,
      '--sagemaker-image',
      IMAGE,
      '--sagemaker-role',
      ROLE,
      '--data-key',
      'none',
    ];
    // moto completes each job at once without a model: train fails, the jobs stay listed
    expect(cli(repo.dir, args, gh(runId)).code).toBe(1);
    expect(cli(repo.dir, args, gh(`${runId}1`)).code).toBe(1);
    const created = (await jobNames()).filter((n) => !before.includes(n));
    expect(created).toHaveLength(2);
    const ours: string[] = [];
    for (const name of created) {
      const job = await sm().send(new DescribeTrainingJobCommand({ TrainingJobName: name }));
      const tags = await sm().send(new ListTagsCommand({ ResourceArn: job.TrainingJobArn }));
      if (tags.Tags?.some((t) => t.Key === 'model-pipeline:ci-run' && t.Value === `github:org/repo:${runId}`))
        ours.push(name);
    }
    expect(ours).toHaveLength(1);

    const s = cli(repo.dir, ['sweep', '--backend', 'sagemaker', '--run-id', runId, '--sweep-dry-run']);
    expect(s.code).toBe(0);
    const lines = s.stdout.trim().split('\n');
    expect(lines).toContain('0 of 1 SageMaker training jobs would be stopped; dry run, none stopped');
    expect(lines).toContain(
      `${ours[0]} Completed: nothing to stop (Completed): belongs to CI run ${runId} (run-id)`,
    );
    expect(s.stdout).not.toContain(created.find((n) => n !== ours[0])!);
  });
});

describe("the action's post step with a saved training job (dist/post on moto)", () => {
  it('reads the job the run saved and asks SageMaker; a finished or unknown job is left alone', async () => {
    const bucket = await newBucket('sm-post');
    const repo = demoRepo();
    const before = await jobNames();
    const t = cli(repo.dir, [
      'train',
      '--backend',
      'sagemaker',
      '--bucket',
      bucket,
      '--sagemaker-image',
      IMAGE,
      '--sagemaker-role',
      ROLE,
      '--data-key',
      'none',
    ]);
    expect(t.code).toBe(1); // moto: Completed at once, no model.tar.gz
    const [job] = (await jobNames()).filter((n) => !before.includes(n));
    const post = (name: string) =>
      spawnSync(process.execPath, [POST], {
        cwd: repo.dir,
        encoding: 'utf8',
        env: {
          ...process.env,
          ...TEST_AWS_ENV,
          GITHUB_ACTIONS: 'true',
          STATE_command: 'train',
          'STATE_sagemaker-training-job': name,
          INPUT_BACKEND: 'sagemaker',
          INPUT_BUCKET: bucket,
          MODEL_PIPELINE_SAGEMAKER_ENDPOINT_URL: motoEndpoint(),
        },
      });
    // moto has no StopTrainingJob and no running job: stopping a running one is on the fake
    // (test/integration/deploy-fake.test.ts); here the wiring from saved state to SageMaker is real
    const done = post(job);
    expect(done.status).toBe(0);
    expect(done.stdout).not.toContain('::error::');
    expect(done.stdout).toContain(`training job ${job} is already Completed`);
    const gone = post('mp-never-created-000000');
    expect(gone.status).toBe(0);
    expect(gone.stdout).toContain('training job mp-never-created-000000 is already gone');
  });
});
