import { PipelineError } from '../../core/errors';
import type { ArchiveEntry, Archives } from '../../core/ports';
import { runLines } from './process-lines';

// UNZIP / ZIPINFO in the environment would add options to every call and change what we parse
const ENV = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  delete env.UNZIP;
  delete env.UNZIPOPT;
  delete env.ZIPINFO;
  delete env.ZIPINFOOPT;
  return env;
};

/** `-rw-r--r--  3.0 unx  12 tx stor 24-Jan-01 00:00 name with spaces`: permissions first, name last. */
const LONG_LINE = /^(\S+)\s+\S+\s+\S+\s+\d+\s+\S+\s+\S+\s+\S+\s+\S+ (.+)$/;

/** Info-ZIP's unzip (apt package `unzip`): present on CI images and the training AMI. */
export class UnzipArchives implements Archives {
  constructor(private readonly binary = 'unzip') {}

  async entries(zipFile: string): Promise<ArchiveEntry[]> {
    const lines: string[] = [];
    const r = await runLines(this.binary, ['-Z', '-s', zipFile], {
      env: ENV(),
      what: `unzip -Z ${zipFile}`,
      onLine: (line, stream) => {
        if (stream === 'stdout') lines.push(line);
      },
    });
    if (r.exitCode !== 0) {
      const empty = r.tail.some((l) => /empty/i.test(l));
      if (empty) return [];
      throw new PipelineError(`${zipFile} is not a readable zip archive: ${r.tail.slice(-3).join(' ')}`);
    }
    const out: ArchiveEntry[] = [];
    for (const line of lines) {
      const m = LONG_LINE.exec(line);
      if (!m || line.startsWith('Archive:')) continue;
      out.push({ name: m[2], symlink: m[1].startsWith('l') });
    }
    return out;
  }

  async extract(zipFile: string, destDir: string): Promise<void> {
    const r = await runLines(this.binary, ['-qq', '-n', zipFile, '-d', destDir], {
      env: ENV(),
      what: `unzip ${zipFile}`,
    });
    if (r.exitCode !== 0)
      throw new PipelineError(
        `unzip of ${zipFile} failed (exit ${r.exitCode}): ${r.tail.slice(-3).join(' ') || 'no output'}`,
      );
  }
}
