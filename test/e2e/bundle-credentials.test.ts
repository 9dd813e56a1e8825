import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { putModel } from '../helpers/models';
import { motoEndpoint, newBucket } from '../helpers/aws';
import { S3ObjectStore } from '../../src/adapters/aws/s3-store';

/*
 * The bundled CLI (dist/cli, rebuilt by `npm run bundle`) with credentials that need STS: a CI's OIDC web
 * identity token, and a profile that assumes a role. The SDK's STS client is not in dist/lib/index.js but in
 * a vendor file loaded on first use (scripts/bundle.mjs); these runs load it. Each is paired with the same
 * run whose STS endpoint refuses connections, which must fail: so the success went through STS.
 */

const CLI = path.resolve(__dirname, '../../dist/cli/index.js');
const CLOSED = 'http://127.0.0.1:9'; // discard port: nothing listens there

describe('the bundled CLI with credentials from STS', () => {
  let bucket: string;
  let dir: string;

  beforeAll(async () => {
    bucket = await newBucket('creds');
    await putModel(
      new S3ObjectStore({ bucket, region: 'us-east-1', endpoint: motoEndpoint() }),
      '1.0.0-abc1234/',
    );
    dir = mkdtempSync(path.join(tmpdir(), 'mp-creds-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `status` of the bucket with only the given credential variables (no access keys in the environment). */
  function status(env: Record<string, string>) {
    const base: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env))
      if (!/^(AWS_|MODEL_PIPELINE_|GITHUB_|CIRCLE|CI$)/.test(k)) base[k] = v;
    return spawnSync(
      process.execPath,
      [CLI, 'status', '--bucket', bucket, '--s3-endpoint', motoEndpoint(), '--region', 'us-east-1'],
      {
        cwd: dir,
        encoding: 'utf8',
        env: {
          ...base,
          MODEL_PIPELINE_NO_CODE_CACHE: '1',
          AWS_CONFIG_FILE: path.join(dir, 'none'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
          AWS_EC2_METADATA_DISABLED: 'true',
          ...env,
        },
      },
    );
  }

  /** Lists the bucket through STS at moto, then fails with STS refusing connections: STS was used. */
  function expectThroughSts(env: Record<string, string>): void {
    const ok = status({ ...env, AWS_ENDPOINT_URL_STS: motoEndpoint() });
    expect(ok.stderr).not.toMatch(/error/i);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('1.0.0-abc1234');
    const refused = status({ ...env, AWS_ENDPOINT_URL_STS: CLOSED });
    expect(refused.status).not.toBe(0);
    expect(refused.stdout).not.toContain('1.0.0-abc1234');
  }

  it('uses a web identity token (GitHub OIDC, EKS) through STS AssumeRoleWithWebIdentity', () => {
    const token = path.join(dir, 'token');
    writeFileSync(token, 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2ln');
    expectThroughSts({
      AWS_WEB_IDENTITY_TOKEN_FILE: token,
      AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/ci',
      AWS_REGION: 'us-east-1',
    });
  });

  it('uses a profile that assumes a role from a source profile, through STS AssumeRole', () => {
    const config = path.join(dir, 'config');
    writeFileSync(
      config,
      [
        '[profile base]',
        'aws_access_key_id = testing',
        'aws_secret_access_key = testing',
        '[profile ci]',
        'role_arn = arn:aws:iam::123456789012:role/ci',
        'source_profile = base',
        'region = us-east-1',
        '',
      ].join('\n'),
    );
    expectThroughSts({ AWS_CONFIG_FILE: config, AWS_PROFILE: 'ci' });
  });
});
