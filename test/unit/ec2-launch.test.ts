import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PipelineError, UserError } from '../../src/core/errors';
import {
  buildUserData,
  classifyLaunchError,
  planLaunchAttempts,
  runLaunchPlan,
  watchdogScript,
  WATCHDOG_PATH,
  type LaunchAttempt,
  type LaunchPlanHooks,
} from '../../src/core/ec2-launch';

const short = (a: LaunchAttempt): string => `${a.instanceType}/${a.subnetId ?? '-'}/${a.market}`;

describe('planLaunchAttempts', () => {
  it.each([
    [['g5.xlarge'], [], false, ['g5.xlarge/-/on-demand']],
    [
      ['a', 'b'],
      ['s1', 's2'],
      false,
      ['a/s1/on-demand', 'a/s2/on-demand', 'b/s1/on-demand', 'b/s2/on-demand'],
    ],
    [['a', 'b'], ['s1'], true, ['a/s1/spot', 'b/s1/spot', 'a/s1/on-demand', 'b/s1/on-demand']],
    [[' a ', 'a', ''], ['s1', 's1'], false, ['a/s1/on-demand']],
  ])('types %j subnets %j spot %s', (types, subnets, spot, expected) => {
    expect(planLaunchAttempts(types, subnets, spot).map(short)).toEqual(expected);
  });

  it('refuses an empty type list', () => {
    expect(() => planLaunchAttempts([' '], [], false)).toThrow(UserError);
  });
});

describe('classifyLaunchError', () => {
  it.each([
    ['InsufficientInstanceCapacity', 'We currently do not have sufficient capacity', 'on-demand', 'capacity'],
    ['InsufficientCapacity', '', 'on-demand', 'capacity'],
    ['InsufficientFreeAddressesInSubnet', '', 'on-demand', 'capacity'],
    [
      'Unsupported',
      'Your requested instance type (p4d.24xlarge) is not supported in your requested Availability Zone (us-east-1e).',
      'on-demand',
      'capacity',
    ],
    ['Unsupported', 'The requested configuration is currently not supported.', 'on-demand', 'fatal'],
    ['InstanceLimitExceeded', '', 'on-demand', 'quota'],
    ['VcpuLimitExceeded', '', 'spot', 'quota'],
    ['MaxSpotInstanceCountExceeded', '', 'spot', 'spot-unavailable'],
    ['SpotMaxPriceTooLow', '', 'spot', 'spot-unavailable'],
    ['SpotMaxPriceTooLow', '', 'on-demand', 'fatal'],
    ['AuthFailure', '', 'on-demand', 'fatal'],
    ['UnauthorizedOperation', 'You are not authorized', 'on-demand', 'fatal'],
    ['InvalidAMIID.NotFound', '', 'on-demand', 'fatal'],
    ['InvalidAMIID.Malformed', '', 'spot', 'fatal'],
    ['InvalidParameterValue', '', 'on-demand', 'fatal'],
    ['InvalidParameterCombination', '', 'spot', 'fatal'],
    ['InvalidSubnetID.NotFound', '', 'on-demand', 'fatal'],
    ['RequestLimitExceeded', '', 'on-demand', 'fatal'],
    ['SomethingNew', '', 'on-demand', 'fatal'],
  ] as const)('%s (%s, %s) -> %s', (code, message, market, kind) => {
    expect(classifyLaunchError(code, message, market).kind).toBe(kind);
  });

  it('points at instance-profile when the profile is the invalid parameter', () => {
    const msg =
      'Value (nope) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name';
    expect(classifyLaunchError('InvalidParameterValue', msg, 'on-demand').hint).toMatch(/instance-profile/);
    expect(classifyLaunchError('InvalidParameterValue', 'other', 'on-demand').hint).toBe(
      'check the launch settings',
    );
  });

  it('blames the input for a bad AMI and the cloud for permissions', () => {
    expect(classifyLaunchError('InvalidAMIID.NotFound', '', 'on-demand')).toMatchObject({ userError: true });
    expect(classifyLaunchError('UnauthorizedOperation', '', 'on-demand')).toMatchObject({ userError: false });
  });
});

class CodeError extends Error {
  constructor(readonly code: string) {
    super(`${code} happened`);
  }
}

function hooks(): LaunchPlanHooks & { failures: string[] } {
  const failures: string[] = [];
  return {
    failures,
    errorInfo: (err) => ({ code: (err as CodeError).code ?? 'Error', message: (err as Error).message }),
    fatal: (err, a) => new UserError(`fatal ${(err as CodeError).code} at ${short(a)}`),
    onFailure: (f) => failures.push(`${short(f.attempt)}:${f.code}`),
  };
}

/** tryOne fails with the scripted code for an attempt, succeeds where none is scripted. */
function scripted(codes: Record<string, string>): {
  tried: string[];
  tryOne: (a: LaunchAttempt) => Promise<string>;
} {
  const tried: string[] = [];
  return {
    tried,
    tryOne: async (a) => {
      tried.push(short(a));
      const code = codes[short(a)];
      if (code) throw new CodeError(code);
      return `i-${short(a)}`;
    },
  };
}

describe('runLaunchPlan', () => {
  it('moves to the next subnet, then the next type, on capacity errors', async () => {
    const plan = planLaunchAttempts(['a', 'b'], ['s1', 's2'], false);
    const s = scripted({
      'a/s1/on-demand': 'InsufficientInstanceCapacity',
      'a/s2/on-demand': 'Unsupported',
    });
    const h = hooks();
    // Unsupported without an AZ message is fatal, so make it an AZ one
    const tryOne = async (a: LaunchAttempt): Promise<string> => {
      try {
        return await s.tryOne(a);
      } catch (err) {
        if ((err as CodeError).code === 'Unsupported')
          throw Object.assign(new CodeError('Unsupported'), {
            message: 'not supported in your requested Availability Zone (us-east-1e)',
          });
        throw err;
      }
    };
    const out = await runLaunchPlan(plan, tryOne, h);
    expect(out.result).toBe('i-b/s1/on-demand');
    expect(s.tried).toEqual(['a/s1/on-demand', 'a/s2/on-demand', 'b/s1/on-demand']);
    expect(out.failures.map((f) => f.code)).toEqual(['InsufficientInstanceCapacity', 'Unsupported']);
    expect(h.failures).toHaveLength(2);
  });

  it('stops at once on a fatal error, without trying the other types', async () => {
    const plan = planLaunchAttempts(['a', 'b'], ['s1', 's2'], false);
    const s = scripted({ 'a/s1/on-demand': 'UnauthorizedOperation' });
    await expect(runLaunchPlan(plan, s.tryOne, hooks())).rejects.toThrow(
      'fatal UnauthorizedOperation at a/s1/on-demand',
    );
    expect(s.tried).toEqual(['a/s1/on-demand']);
  });

  it('a fatal error after capacity errors still stops', async () => {
    const plan = planLaunchAttempts(['a', 'b', 'c'], [], false);
    const s = scripted({
      'a/-/on-demand': 'InsufficientInstanceCapacity',
      'b/-/on-demand': 'InvalidAMIID.NotFound',
    });
    await expect(runLaunchPlan(plan, s.tryOne, hooks())).rejects.toThrow(UserError);
    expect(s.tried).toEqual(['a/-/on-demand', 'b/-/on-demand']);
  });

  it('skips the other subnets of a type that hit a quota, but tries the next type', async () => {
    const plan = planLaunchAttempts(['a', 'b'], ['s1', 's2'], false);
    const s = scripted({ 'a/s1/on-demand': 'VcpuLimitExceeded' });
    const out = await runLaunchPlan(plan, s.tryOne, hooks());
    expect(s.tried).toEqual(['a/s1/on-demand', 'b/s1/on-demand']);
    expect(out.attempt).toEqual({ instanceType: 'b', subnetId: 's1', market: 'on-demand' });
  });

  it('falls back from spot to on-demand on spot capacity errors', async () => {
    const plan = planLaunchAttempts(['a'], ['s1', 's2'], true);
    const s = scripted({
      'a/s1/spot': 'InsufficientInstanceCapacity',
      'a/s2/spot': 'InsufficientInstanceCapacity',
    });
    const out = await runLaunchPlan(plan, s.tryOne, hooks());
    expect(out.result).toBe('i-a/s1/on-demand');
    expect(s.tried).toEqual(['a/s1/spot', 'a/s2/spot', 'a/s1/on-demand']);
  });

  it('skips every spot attempt once spot is unavailable (price, spot limit)', async () => {
    const plan = planLaunchAttempts(['a', 'b'], ['s1'], true);
    const s = scripted({ 'a/s1/spot': 'MaxSpotInstanceCountExceeded' });
    const out = await runLaunchPlan(plan, s.tryOne, hooks());
    expect(s.tried).toEqual(['a/s1/spot', 'a/s1/on-demand']);
    expect(out.attempt.market).toBe('on-demand');
  });

  it('reports every attempt when nothing has capacity', async () => {
    const plan = planLaunchAttempts(['a', 'b'], [], false);
    const s = scripted({
      'a/-/on-demand': 'InsufficientInstanceCapacity',
      'b/-/on-demand': 'InsufficientCapacity',
    });
    const err = await runLaunchPlan(plan, s.tryOne, hooks()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as Error).message).toMatch(
      /a on-demand: InsufficientInstanceCapacity; b on-demand: InsufficientCapacity/,
    );
  });

  it('stops between attempts when aborted', async () => {
    const plan = planLaunchAttempts(['a', 'b'], [], false);
    const ac = new AbortController();
    const tried: string[] = [];
    const tryOne = async (a: LaunchAttempt): Promise<string> => {
      tried.push(short(a));
      ac.abort();
      throw new CodeError('InsufficientInstanceCapacity');
    };
    await expect(runLaunchPlan(plan, tryOne, { ...hooks(), signal: ac.signal })).rejects.toThrow(/cancelled/);
    expect(tried).toEqual(['a/-/on-demand']);
  });
});

function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

const LAUNCHED = new Date('2026-03-01T10:00:00Z');
const LAUNCHED_EPOCH = LAUNCHED.getTime() / 1000;

/**
 * Runs user data in a sandbox: every path under MODEL_PIPELINE_WATCHDOG_ROOT, and date, shutdown, poweroff
 * and systemctl are fakes that log their arguments. `now` is what `date +%s` says.
 */
function sandbox() {
  const dir = mkdtempSync(path.join(tmpdir(), 'watchdog-'));
  const bin = path.join(dir, 'bin');
  const root = path.join(dir, 'root');
  mkdirSync(bin);
  mkdirSync(path.join(root, 'etc/systemd/system'), { recursive: true });
  const log = path.join(dir, 'called');
  const fake = (name: string, body: string) =>
    writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  fake('date', 'if [ "$1" = "+%s" ]; then echo "$FAKE_NOW"; else /bin/date "$@"; fi');
  for (const name of ['shutdown', 'poweroff', 'systemctl']) fake(name, `echo "${name} $*" >> "${log}"`);
  const run = (file: string, now: number) => {
    writeFileSync(log, '');
    const r = spawnSync('sh', [file], {
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH}`,
        MODEL_PIPELINE_WATCHDOG_ROOT: root,
        FAKE_NOW: String(now),
      },
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
  };
  return { dir, root, run, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('watchdogScript', () => {
  it.each([0, -5, 1.5, Number.NaN])('refuses max runtime %p', (secs) => {
    expect(() => watchdogScript(secs, LAUNCHED)).toThrow(UserError);
  });

  it('carries the absolute deadline, launch + max runtime', () => {
    const script = watchdogScript(21600, LAUNCHED);
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toContain(`deadline=${LAUNCHED_EPOCH + 21600}`);
    expect(script).toContain('deadline_utc=2026-03-01T16:00:00.000Z');
  });

  it('is valid sh and passes shellcheck, and so does the per-boot script it installs', () => {
    const sb = sandbox();
    try {
      const file = path.join(sb.dir, 'user-data.sh');
      writeFileSync(file, watchdogScript(3600, LAUNCHED));
      sb.run(file, LAUNCHED_EPOCH + 30);
      const installed = path.join(sb.root, WATCHDOG_PATH);
      for (const f of [file, installed]) {
        expect(spawnSync('sh', ['-n', f]).status).toBe(0);
        if (hasTool('shellcheck')) {
          const r = spawnSync('shellcheck', ['-s', 'sh', f], { encoding: 'utf8' });
          expect(r.stdout + r.stderr).toBe('');
          expect(r.status).toBe(0);
        }
      }
    } finally {
      sb.cleanup();
    }
  });

  it('arms at first boot, installs itself for every boot, and a reboot keeps the same deadline', () => {
    const sb = sandbox();
    try {
      const file = path.join(sb.dir, 'user-data.sh');
      writeFileSync(file, watchdogScript(3600, LAUNCHED));
      // first boot, 2 minutes after launch: 58 minutes left
      expect(sb.run(file, LAUNCHED_EPOCH + 120)).toEqual([
        'systemctl enable model-pipeline-watchdog.service',
        'shutdown -P +58 model-pipeline watchdog: max runtime reached',
      ]);
      const perBoot = path.join(sb.root, 'var/lib/cloud/scripts/per-boot/model-pipeline-watchdog');
      expect(statSync(perBoot).mode & 0o111).not.toBe(0);
      expect(
        readFileSync(path.join(sb.root, 'etc/systemd/system/model-pipeline-watchdog.service'), 'utf8'),
      ).toContain(`ExecStart=${WATCHDOG_PATH}`);
      // a reboot 40 minutes in: the per-boot script re-arms for what is left, not a fresh hour
      expect(sb.run(perBoot, LAUNCHED_EPOCH + 40 * 60)).toEqual([
        'shutdown -P +20 model-pipeline watchdog: max runtime reached',
      ]);
      // a reboot after the deadline: off at once
      expect(sb.run(path.join(sb.root, WATCHDOG_PATH), LAUNCHED_EPOCH + 3700)).toEqual(['poweroff']);
    } finally {
      sb.cleanup();
    }
  });
});

describe('buildUserData', () => {
  it('is the bare watchdog script without extra user data', () => {
    expect(buildUserData(3600, LAUNCHED)).toBe(watchdogScript(3600, LAUNCHED));
    expect(buildUserData(3600, LAUNCHED, '  \n')).toBe(watchdogScript(3600, LAUNCHED));
  });

  it.each([
    ['#!/bin/bash\necho hi\n', 'text/x-shellscript'],
    ['#cloud-config\npackages: [rsync]\n', 'text/cloud-config'],
  ])('wraps %j with the watchdog in a multipart message', (extra, type) => {
    const out = buildUserData(600, LAUNCHED, extra);
    expect(out).toMatch(/^Content-Type: multipart\/mixed; boundary="([^"]+)"/);
    const boundary = /boundary="([^"]+)"/.exec(out)![1];
    const parts = out.split(`--${boundary}`).slice(1, -1);
    expect(parts).toHaveLength(2);
    expect(parts[0]).toContain('Content-Type: text/x-shellscript');
    expect(parts[0]).toContain('max_seconds=600');
    expect(parts[1]).toContain(`Content-Type: ${type}`);
    expect(parts[1]).toContain(extra.trim());
    expect(out.trimEnd().endsWith(`--${boundary}--`)).toBe(true);
  });

  it('rejects user data cloud-init cannot tell the type of, and oversized user data', () => {
    expect(() => buildUserData(600, LAUNCHED, 'echo no shebang')).toThrow(/must start with/);
    expect(() => buildUserData(600, LAUNCHED, '#!/bin/sh\n' + 'x'.repeat(17000))).toThrow(/16 KiB/);
  });
});
