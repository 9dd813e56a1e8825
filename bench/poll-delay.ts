import {
  DescribeInstancesCommand,
  EC2Client,
  RegisterImageCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { connect, createServer, type Server } from 'node:net';
import { ec2ClientConfig, Ec2Compute } from '../src/adapters/aws/ec2-compute';
import { SshShell } from '../src/adapters/ssh/ssh-shell';
import { quietLogger as quiet } from '../test/helpers/memory-logger';
import { freePort } from '../test/helpers/moto';
import { startSshd, type Sshd } from '../test/helpers/sshd';
import {
  log,
  median,
  nowMs,
  runsOf,
  type BenchContext,
  type BenchOutput,
  type Series,
  type Verdict,
} from './lib';

/** Ec2Compute's default DescribeInstances interval (src/adapters/aws/ec2-compute.ts), to label the rows. */
const EC2_POLL_MS = 2000;
/** SshShell's default readiness interval (pollSeconds). */
const SSH_POLL_MS = 2000;

/** A delay drawn so readiness lands at a random point of the poll cycle. */
function readyAfter(ctx: BenchContext): number {
  return ctx.smoke ? 200 + Math.random() * 600 : 1000 + Math.random() * 3000;
}

/**
 * waitUntilRunning against moto, with DescribeInstances answering "pending" until a chosen moment: how long
 * after the instance is really running does the adapter notice (default poll interval, real clock).
 */
async function ec2Delay(ctx: BenchContext, runs: number): Promise<number[]> {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
  const client = new EC2Client(ec2ClientConfig({ endpoint: ctx.endpoint }));
  const imageId = (
    await client.send(new RegisterImageCommand({ Name: `bench-${Date.now()}`, RootDeviceName: '/dev/sda1' }))
  ).ImageId!;
  let readyAt = Infinity;
  const realSend = client.send.bind(client) as (cmd: unknown, opts?: unknown) => Promise<unknown>;
  client.send = (async (command: unknown, options?: unknown) => {
    const out = (await realSend(command, options)) as { Reservations?: { Instances?: Instance[] }[] };
    if (command instanceof DescribeInstancesCommand && nowMs() < readyAt)
      for (const r of out.Reservations ?? [])
        for (const i of r.Instances ?? []) i.State = { Name: 'pending' };
    return out;
  }) as EC2Client['send'];
  const compute = new Ec2Compute({ client });
  const delays: number[] = [];
  for (let i = 0; i < runs; i++) {
    const info = await compute.launch({
      imageId,
      instanceTypes: ['t3.micro'],
      subnetIds: [],
      securityGroupIds: [],
      spot: false,
      rootVolumeGiB: 8,
      maxRuntimeSeconds: 600,
      tags: { bench: 'poll-delay' },
    });
    readyAt = nowMs() + readyAfter(ctx);
    await compute.waitUntilRunning(info.id, 60);
    delays.push(nowMs() - readyAt);
    readyAt = Infinity;
    await compute.terminate(info.id);
  }
  return delays;
}

/** A port that refuses connections until `listen()`, then forwards to sshd: the instance's sshd coming up. */
function lateProxy(port: number, target: number): { listen(): Promise<void>; close(): Promise<void> } {
  let server: Server | undefined;
  const sockets = new Set<{ destroy(): void }>();
  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server = createServer((sock) => {
          const up = connect(target, '127.0.0.1');
          sockets.add(sock).add(up);
          sock.pipe(up).pipe(sock);
          up.on('error', () => sock.destroy());
          sock.on('error', () => up.destroy());
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: () =>
      new Promise((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

async function sshDelay(ctx: BenchContext, runs: number, sshd: Sshd): Promise<number[]> {
  const delays: number[] = [];
  for (let i = 0; i < runs; i++) {
    const port = await freePort();
    const proxy = lateProxy(port, sshd.port);
    const shell = new SshShell({
      host: '127.0.0.1',
      port,
      user: sshd.user,
      privateKey: sshd.clientPrivateKey,
      hostKeys: { keys: [sshd.hostPublicKey], fingerprints: [] },
      logger: quiet,
    });
    let listenedAt = 0;
    const opening = new Promise<void>((resolve, reject) => {
      setTimeout(() => {
        proxy
          .listen()
          .then(() => {
            listenedAt = nowMs();
            resolve();
          })
          .catch(reject);
      }, readyAfter(ctx));
    });
    try {
      await shell.waitReady(60);
      await opening;
      delays.push(nowMs() - listenedAt);
    } finally {
      await opening.catch(() => undefined);
      await shell.close?.();
      await proxy.close();
    }
  }
  return delays;
}

/** How long after the instance is running (EC2 poll) and after sshd listens (SSH probe) train moves on. */
export async function pollDelay(ctx: BenchContext): Promise<BenchOutput> {
  const runs = runsOf(ctx, 8);
  const bench = 'poll-delay';
  const notes: string[] = [];
  const series: Series[] = [];
  const verdicts: Verdict[] = [];

  const ec2 = await ec2Delay(ctx, runs);
  log(`poll-delay ec2: median ${median(ec2).toFixed(0)} ms`);
  series.push({
    bench,
    name: `EC2 waitUntilRunning after running (poll ${EC2_POLL_MS} ms)`,
    unit: 'ms',
    samples: ec2,
  });
  verdicts.push({
    bench,
    name: `EC2 delay / poll interval ${EC2_POLL_MS} ms`,
    samples: ec2.map((d) => d / EC2_POLL_MS),
    unit: 'x',
    target: 'report',
    met: undefined,
    note: 'random phase: expect ~0.5 + one DescribeInstances',
  });

  let sshd: Sshd | undefined;
  try {
    sshd = await startSshd();
  } catch (err) {
    notes.push(`poll-delay: SSH part not run, sshd did not start: ${(err as Error).message.split('\n')[0]}`);
    return { series, verdicts, notes };
  }
  try {
    const ssh = await sshDelay(ctx, runs, sshd);
    log(`poll-delay ssh: median ${median(ssh).toFixed(0)} ms`);
    series.push({
      bench,
      name: `SSH waitReady after sshd listens (poll ${SSH_POLL_MS} ms)`,
      unit: 'ms',
      samples: ssh,
    });
    verdicts.push({
      bench,
      name: `SSH delay / poll interval ${SSH_POLL_MS} ms`,
      samples: ssh.map((d) => d / SSH_POLL_MS),
      unit: 'x',
      target: 'report',
      met: undefined,
      note: 'random phase: expect ~0.5 + one ssh login',
    });
  } finally {
    await sshd.stop();
  }
  return { series, verdicts, notes };
}
