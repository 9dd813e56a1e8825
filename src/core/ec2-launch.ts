import { PipelineError, UserError } from './errors';

/**
 * The pure half of launching a training instance: which (type, subnet, market) to try in which order,
 * which EC2 errors mean "try the next one", and the watchdog script the instance runs at boot.
 */

export type Market = 'spot' | 'on-demand';

export interface LaunchAttempt {
  instanceType: string;
  /** Undefined: let EC2 pick the default subnet. */
  subnetId?: string;
  market: Market;
}

/**
 * Spot first (every type in every subnet), then on-demand in the same order: whoever asked for spot wants
 * the price, and any listed type is acceptable. Within a market, the preferred type is tried in every subnet
 * (availability zone) before the next type.
 */
export function planLaunchAttempts(
  instanceTypes: string[],
  subnetIds: string[],
  spot: boolean,
): LaunchAttempt[] {
  const types = [...new Set(instanceTypes.map((t) => t.trim()).filter((t) => t !== ''))];
  if (types.length === 0) throw new UserError('instance-types is empty: give at least one EC2 instance type');
  const subnets: (string | undefined)[] = subnetIds.length > 0 ? [...new Set(subnetIds)] : [undefined];
  const markets: Market[] = spot ? ['spot', 'on-demand'] : ['on-demand'];
  const attempts: LaunchAttempt[] = [];
  for (const market of markets)
    for (const instanceType of types)
      for (const subnetId of subnets) attempts.push({ instanceType, subnetId, market });
  return attempts;
}

export function describeAttempt(a: LaunchAttempt): string {
  return `${a.instanceType} ${a.market}${a.subnetId ? ` in ${a.subnetId}` : ''}`;
}

/**
 * capacity: this type has no room in this subnet's zone now; try the next attempt.
 * quota: an account limit for this type (its vCPU family) in this market, the same in every subnet;
 *   skip this type's other subnets in this market, keep trying other types and markets.
 * spot-unavailable: spot cannot be had at all (price, spot request limit); go on with on-demand.
 * fatal: retrying elsewhere cannot help (credentials, permissions, bad AMI, bad parameters): fail now.
 */
export type LaunchErrorKind = 'capacity' | 'quota' | 'spot-unavailable' | 'fatal';

export interface LaunchErrorClass {
  kind: LaunchErrorKind;
  /** For fatal errors: whether the input is to blame (UserError) rather than the cloud (PipelineError). */
  userError?: boolean;
  /** What the user should change, for fatal errors. */
  hint?: string;
}

const CAPACITY_CODES = new Set([
  'InsufficientInstanceCapacity',
  'InsufficientCapacity',
  'InsufficientHostCapacity',
  'InsufficientReservedInstanceCapacity',
  'InsufficientFreeAddressesInSubnet',
  'UnfulfillableCapacity',
]);
const QUOTA_CODES = new Set(['InstanceLimitExceeded', 'VcpuLimitExceeded']);
const SPOT_CODES = new Set(['SpotMaxPriceTooLow', 'MaxSpotInstanceCountExceeded']);

/** [code pattern, message pattern or undefined, hint, the input is to blame]; first match wins. */
const FATAL_HINTS: [RegExp, RegExp | undefined, string, boolean][] = [
  [
    /^InvalidAMIID\./,
    undefined,
    'the AMI does not exist or is not usable here: check ami-id / ami-version and the region',
    true,
  ],
  [/^InvalidSubnetID\./, undefined, 'check subnet-id / subnet-cidr and the region', true],
  [
    /^InvalidGroup\.|^InvalidSecurityGroupID\./,
    undefined,
    'check security-group-id / security-group-name',
    true,
  ],
  [/^InvalidKeyPair\./, undefined, 'check key-name (the key pair must exist in this region)', true],
  [
    /^InvalidParameterValue$/,
    /iamInstanceProfile/i,
    'check instance-profile (name or ARN of an instance profile)',
    true,
  ],
  [
    /^InvalidParameter|^InvalidInstanceType|^InvalidBlockDeviceMapping|^InvalidUserData/,
    undefined,
    'check the launch settings',
    true,
  ],
  [
    /^(AuthFailure|UnauthorizedOperation|AccessDenied|InvalidClientTokenId|SignatureDoesNotMatch|Blocked|OptInRequired)/,
    undefined,
    'check the AWS credentials and docs/iam-policy.json',
    false,
  ],
];

export function classifyLaunchError(code: string, message: string, market: Market): LaunchErrorClass {
  if (CAPACITY_CODES.has(code)) return { kind: 'capacity' };
  // "Your requested instance type (x) is not supported in your requested Availability Zone (us-east-1e)"
  if (code === 'Unsupported' && /availability zone/i.test(message)) return { kind: 'capacity' };
  if (market === 'spot' && SPOT_CODES.has(code)) return { kind: 'spot-unavailable' };
  if (QUOTA_CODES.has(code)) return { kind: 'quota' };
  for (const [codeRe, messageRe, hint, userError] of FATAL_HINTS) {
    if (codeRe.test(code) && (!messageRe || messageRe.test(message)))
      return { kind: 'fatal', hint, userError };
  }
  return { kind: 'fatal', userError: false };
}

export interface LaunchFailure {
  attempt: LaunchAttempt;
  code: string;
  message: string;
}

export interface LaunchPlanResult<T> {
  result: T;
  attempt: LaunchAttempt;
  /** Attempts that failed (capacity, quota) before the one that worked. */
  failures: LaunchFailure[];
}

export interface LaunchPlanHooks {
  /** Error code and message of whatever tryOne threw. */
  errorInfo(err: unknown): { code: string; message: string };
  /** The error to throw for a fatal failure (the adapter knows how to word cloud errors). */
  fatal(err: unknown, attempt: LaunchAttempt, cls: LaunchErrorClass): Error;
  onFailure?(failure: LaunchFailure, cls: LaunchErrorClass): void;
  signal?: AbortSignal;
}

/** Walks the plan: next attempt on capacity-like errors, stop at once on anything else. */
export async function runLaunchPlan<T>(
  attempts: LaunchAttempt[],
  tryOne: (a: LaunchAttempt) => Promise<T>,
  hooks: LaunchPlanHooks,
): Promise<LaunchPlanResult<T>> {
  const failures: LaunchFailure[] = [];
  const skippedTypeMarkets = new Set<string>();
  let spotSkipped = false;
  for (const attempt of attempts) {
    if (hooks.signal?.aborted) throw new PipelineError('launch cancelled');
    if (attempt.market === 'spot' && spotSkipped) continue;
    if (skippedTypeMarkets.has(`${attempt.instanceType}/${attempt.market}`)) continue;
    try {
      return { result: await tryOne(attempt), attempt, failures };
    } catch (err) {
      const info = hooks.errorInfo(err);
      const cls = classifyLaunchError(info.code, info.message, attempt.market);
      if (cls.kind === 'fatal') throw hooks.fatal(err, attempt, cls);
      const failure = { attempt, ...info };
      failures.push(failure);
      hooks.onFailure?.(failure, cls);
      if (cls.kind === 'quota') skippedTypeMarkets.add(`${attempt.instanceType}/${attempt.market}`);
      if (cls.kind === 'spot-unavailable') spotSkipped = true;
    }
  }
  const tried = failures.map((f) => `${describeAttempt(f.attempt)}: ${f.code}`).join('; ');
  throw new PipelineError(
    `no EC2 capacity for any instance type (${tried}). Add instance types to instance-types, subnets in ` +
      `other availability zones to subnet-id, or retry later.`,
  );
}

export const WATCHDOG_MARKER = 'model-pipeline watchdog';
/** Where the per-boot script lives on the instance (also what the systemd unit runs). */
export const WATCHDOG_PATH = '/usr/local/sbin/model-pipeline-watchdog';

/**
 * The script that enforces the deadline on one boot: power off now when it has passed (a reboot after the
 * deadline), else schedule the power-off for the minutes left. The deadline is absolute (epoch seconds), so
 * a reboot neither disarms the watchdog nor restarts its clock.
 */
function enforceScript(deadlineEpoch: number): string {
  return [
    '#!/bin/sh',
    `# ${WATCHDOG_MARKER}: enforce the absolute deadline; runs at every boot`,
    `deadline=${deadlineEpoch}`,
    'now=$(date +%s)',
    'left=$((deadline - now))',
    'if [ "$left" -le 60 ]; then',
    `  echo "${WATCHDOG_MARKER}: past the deadline, powering off now"`,
    `  poweroff || shutdown -P now "${WATCHDOG_MARKER}: max runtime reached" || halt -p -f`,
    '  exit 0',
    'fi',
    'left_minutes=$((left / 60))',
    `echo "${WATCHDOG_MARKER}: powering off in $left_minutes minutes"`,
    `if ! shutdown -P "+$left_minutes" "${WATCHDOG_MARKER}: max runtime reached"; then`,
    // without a working shutdown scheduler, a detached sleeper does the same
    '  nohup sh -c "sleep $left; poweroff -f || halt -p -f" >/dev/null 2>&1 </dev/null &',
    'fi',
    '',
  ].join('\n');
}

/**
 * The first-boot user data part: installs the deadline enforcer as a cloud-init per-boot script and, where
 * there is systemd, as a service enabled for every boot, then runs it. With
 * InstanceInitiatedShutdownBehavior=terminate, power-off ends the instance, so neither a dead CI job nor a
 * reboot can leave it running past launch + max runtime. MODEL_PIPELINE_WATCHDOG_ROOT (tests only) prefixes
 * every path written.
 */
export function watchdogScript(maxRuntimeSeconds: number, launchedAt: Date): string {
  if (!Number.isInteger(maxRuntimeSeconds) || maxRuntimeSeconds <= 0)
    throw new UserError(`max-runtime must be a positive number of seconds, got ${maxRuntimeSeconds}`);
  const deadline = Math.floor(launchedAt.getTime() / 1000) + maxRuntimeSeconds;
  const unit = [
    '[Unit]',
    `Description=${WATCHDOG_MARKER}: power off at the instance deadline`,
    '[Service]',
    'Type=oneshot',
    `ExecStart=${WATCHDOG_PATH}`,
    '[Install]',
    'WantedBy=multi-user.target',
  ];
  return [
    '#!/bin/sh',
    `# ${WATCHDOG_MARKER}: power off (and so terminate) this instance at launch + max runtime, at every boot`,
    `max_seconds=${maxRuntimeSeconds}`,
    `deadline_utc=${new Date(deadline * 1000).toISOString()}`,
    'root="${MODEL_PIPELINE_WATCHDOG_ROOT:-}"',
    `enforce="$root${WATCHDOG_PATH}"`,
    'per_boot="$root/var/lib/cloud/scripts/per-boot"',
    'mkdir -p "$(dirname "$enforce")" "$per_boot"',
    'cat > "$enforce" <<\'MODEL_PIPELINE_WATCHDOG\'',
    enforceScript(deadline).trimEnd(),
    'MODEL_PIPELINE_WATCHDOG',
    'chmod 755 "$enforce"',
    'cp "$enforce" "$per_boot/model-pipeline-watchdog"',
    'if command -v systemctl >/dev/null 2>&1 && [ -d "$root/etc/systemd/system" ]; then',
    '  cat > "$root/etc/systemd/system/model-pipeline-watchdog.service" <<\'MODEL_PIPELINE_UNIT\'',
    ...unit,
    'MODEL_PIPELINE_UNIT',
    '  systemctl enable model-pipeline-watchdog.service >/dev/null 2>&1 || true',
    'fi',
    `echo "${WATCHDOG_MARKER}: max runtime $max_seconds s, deadline $deadline_utc"`,
    'exec "$enforce"',
    '',
  ].join('\n');
}

const USER_DATA_LIMIT = 16 * 1024;
const BOUNDARY = '==model-pipeline-user-data==';

function partType(userData: string): string {
  const first = userData.trimStart().split('\n', 1)[0] ?? '';
  if (first.startsWith('#!')) return 'text/x-shellscript';
  if (first.startsWith('#cloud-config')) return 'text/cloud-config';
  if (first.startsWith('#cloud-boothook')) return 'text/cloud-boothook';
  if (first.startsWith('#include')) return 'text/x-include-url';
  throw new UserError(
    'user data must start with "#!" (a script) or "#cloud-config"; it is combined with the max-runtime watchdog',
  );
}

/**
 * The instance's user data: the watchdog alone, or a cloud-init multipart message with the watchdog first
 * and the caller's script or cloud-config second.
 */
export function buildUserData(maxRuntimeSeconds: number, launchedAt: Date, extra?: string): string {
  const watchdog = watchdogScript(maxRuntimeSeconds, launchedAt);
  let out = watchdog;
  if (extra !== undefined && extra.trim() !== '') {
    const part = (type: string, filename: string, body: string): string =>
      [
        `--${BOUNDARY}`,
        `Content-Type: ${type}; charset="utf-8"`,
        'MIME-Version: 1.0',
        `Content-Disposition: attachment; filename="${filename}"`,
        '',
        body.endsWith('\n') ? body : body + '\n',
      ].join('\n');
    out = [
      `Content-Type: multipart/mixed; boundary="${BOUNDARY}"`,
      'MIME-Version: 1.0',
      '',
      part('text/x-shellscript', 'model-pipeline-watchdog.sh', watchdog),
      part(partType(extra), 'user-data', extra),
      `--${BOUNDARY}--`,
      '',
    ].join('\n');
  }
  if (Buffer.byteLength(out, 'utf8') > USER_DATA_LIMIT)
    throw new UserError(`user data is ${Buffer.byteLength(out, 'utf8')} bytes; EC2 allows at most 16 KiB`);
  return out;
}
