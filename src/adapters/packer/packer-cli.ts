import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { PipelineError, UserError } from '../../core/errors';
import {
  artifactImages,
  buildArgs,
  buildErrors,
  displayText,
  initArgs,
  needsPluginDeclaration,
  parseMachineReadableLine,
  parsePackerVersion,
  supportsInit,
  validateArgs,
  type Variables,
} from '../../core/packer';
import type { ImageBuilder, Logger } from '../../core/ports';

export interface PackerCliOptions {
  /** Path of the packer binary, found or installed on first use. */
  binary: () => Promise<string>;
  cwd: string;
  env: Record<string, string | undefined>;
  logger: Logger;
  /** How long packer may clean up (terminate its builder) after SIGINT before it is killed. */
  interruptGraceMs?: number;
}

interface RunResult {
  exitCode: number;
  lines: string[];
  interrupted: boolean;
}

/** Packer through its command line: init where the version has it, validate, build -machine-readable. */
export class PackerImageBuilder implements ImageBuilder {
  private version?: [number, number, number];
  private bin?: string;

  constructor(private readonly o: PackerCliOptions) {}

  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(this.o.env)) if (v !== undefined) env[k] = v;
    env.CHECKPOINT_DISABLE = '1';
    env.PACKER_NO_COLOR = '1';
    return env;
  }

  private run(
    args: string[],
    what: string,
    onLine?: (line: string) => void,
    signal?: AbortSignal,
  ): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new PipelineError(`${what} not started: the run was interrupted`));
        return;
      }
      // a process group of its own: packer re-executes itself (panicwrap) and only the child acts on
      // signals, so SIGINT must reach the whole group, as Ctrl-C in a terminal does
      const child = spawn(this.bin!, args, {
        cwd: this.o.cwd,
        env: this.env(),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const signalGroup = (sig: NodeJS.Signals): void => {
        if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          // already gone
        }
      };
      const lines: string[] = [];
      let interrupted = false;
      let killTimer: NodeJS.Timeout | undefined;
      // SIGINT, not SIGTERM: packer cancels the build and terminates its builder instance before exiting
      const onAbort = (): void => {
        interrupted = true;
        this.o.logger.warn(`${what}: interrupted; waiting for packer to clean up its builder instance`);
        signalGroup('SIGINT');
        killTimer = setTimeout(() => signalGroup('SIGKILL'), this.o.interruptGraceMs ?? 10 * 60_000);
        killTimer.unref();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const closed: Promise<void>[] = [];
      for (const stream of [child.stdout, child.stderr]) {
        const rl = createInterface({ input: stream, crlfDelay: Infinity });
        rl.on('line', (line) => {
          lines.push(line);
          if (lines.length > 20_000) lines.splice(0, 10_000);
          onLine?.(line);
        });
        closed.push(new Promise((r) => rl.once('close', () => r())));
      }
      child.once('error', (err: NodeJS.ErrnoException) => {
        signal?.removeEventListener('abort', onAbort);
        const hint = err.code === 'ENOENT' ? `${this.bin} not found` : err.message;
        reject(new PipelineError(`cannot run ${what}: ${hint}`));
      });
      child.once('close', (code, sig) => {
        void Promise.all(closed).then(() => {
          signal?.removeEventListener('abort', onAbort);
          if (killTimer) clearTimeout(killTimer);
          resolve({ exitCode: code ?? (sig ? 128 : 1), lines, interrupted });
        });
      });
    });
  }

  /** Binary, version, plugin check and `packer init`, once per template folder use. */
  private async prepare(templateDir: string): Promise<string> {
    const dir = path.resolve(this.o.cwd, templateDir);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      throw new UserError(
        `packer template folder ${templateDir} not found (in ${this.o.cwd}); set packer-template-dir or copy templates/packer/ from model-pipeline`,
      );
    }
    const hcl = names.filter((n) => n.endsWith('.pkr.hcl'));
    if (hcl.length === 0 && !names.some((n) => n.endsWith('.pkr.json'))) {
      throw new UserError(`packer template folder ${templateDir} holds no *.pkr.hcl file`);
    }
    if (!this.bin) {
      this.bin = await this.o.binary();
      const r = await this.run(['version'], 'packer version');
      const v = parsePackerVersion(r.lines.join('\n'));
      if (r.exitCode !== 0 || !v) {
        throw new PipelineError(`${this.bin} version failed: ${r.lines.slice(-5).join(' ')}`);
      }
      this.version = v;
      this.o.logger.info(`packer ${v.join('.')} at ${this.bin}`);
    }
    const version = this.version!;
    if (needsPluginDeclaration(version)) {
      const texts = await Promise.all(hcl.map((n) => fs.readFile(path.join(dir, n), 'utf8')));
      if (!texts.some((t) => /\brequired_plugins\b/.test(t))) {
        throw new UserError(
          `packer ${version.join('.')} needs the amazon plugin declared in ${templateDir}: copy plugins.pkr.hcl from templates/packer to ${templateDir}`,
        );
      }
    }
    if (supportsInit(version)) {
      const r = await this.run(initArgs(dir), 'packer init', (l) => this.o.logger.info(l));
      if (r.exitCode !== 0) {
        throw new PipelineError(`packer init ${templateDir} failed: ${r.lines.slice(-5).join(' ')}`);
      }
    }
    return dir;
  }

  async validate(templateDir: string, variables: Variables): Promise<void> {
    const dir = await this.prepare(templateDir);
    const r = await this.run(validateArgs(dir, variables), 'packer validate');
    if (r.exitCode !== 0) {
      const detail = r.lines.filter((l) => l.trim() !== '').join('\n');
      throw new UserError(`packer validate of ${templateDir} failed:\n${detail}`);
    }
  }

  async build(request: {
    templateDir: string;
    variables: Variables;
    onOutput?: (line: string) => void;
    signal?: AbortSignal;
  }): Promise<{ imageId: string; region?: string }> {
    const dir = await this.prepare(request.templateDir);
    const log = this.o.logger;
    const r = await this.run(
      buildArgs(dir, request.variables),
      'packer build',
      (line) => {
        request.onOutput?.(line);
        const p = parseMachineReadableLine(line);
        if (!p) {
          if (line.trim() !== '') log.info(line);
          return;
        }
        const d = displayText(p);
        if (d?.level === 'error') log.error(d.text);
        else if (d) log.info(d.text);
      },
      request.signal,
    );
    if (r.interrupted) {
      throw new PipelineError(
        `packer build was interrupted (exit ${r.exitCode}); packer cleaned up its builder instance`,
      );
    }
    if (r.exitCode !== 0) {
      const errors = buildErrors(r.lines);
      const detail = errors.length > 0 ? errors.join('; ') : r.lines.slice(-5).join(' ');
      throw new PipelineError(`packer build failed (exit ${r.exitCode}): ${detail}`);
    }
    const images = artifactImages(r.lines);
    if (images.length === 0) {
      throw new PipelineError(
        'packer build succeeded but reported no AMI (no `artifact,0,id,<region>:<ami>` line); is the builder amazon-ebs?',
      );
    }
    const wanted = request.variables.region;
    const img = images.find((i) => i.region === wanted) ?? images[0];
    return { imageId: img.imageId, region: img.region };
  }
}
