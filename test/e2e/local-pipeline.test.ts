import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** Inside GitHub Actions the CLI would also write the job's own $GITHUB_OUTPUT and step summary. */
function withoutGithub(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['GITHUB_ACTIONS', 'GITHUB_OUTPUT', 'GITHUB_STEP_SUMMARY']) delete env[k];
  return env;
}

/** The README's main-job command: the whole pipeline on the local backend, through the committed bundle. */
describe('examples/local-pipeline.sh', () => {
  it('decides, trains, promotes and reports a model with no AWS', () => {
    const out = execFileSync('bash', [path.join(ROOT, 'examples/local-pipeline.sh')], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...withoutGithub(), MODEL_PIPELINE_NO_CODE_CACHE: '1' },
    });
    const prefix =
      /(1\.1\.0-[0-9a-f]{7})\/: needs a model \(version-bump\): version changed 1\.0\.0 -> 1\.1\.0/.exec(out);
    expect(prefix).not.toBeNull();
    const name = prefix![1];
    expect(out).toMatch(new RegExp(`promoted ${name}/ to development`));
    expect(out).toMatch(
      new RegExp(
        `${name}/ \\(this commit\\)\\s+1\\.1\\.0\\s+[0-9a-f]{7}\\s+\\d+ B\\s+[\\d.]+ \\S+\\s+\\S+\\s+development`,
      ),
    );
    expect(out).toContain(
      `${name}/: no build (this-commit): a complete model ${name} is already in the store`,
    );
  });
});
