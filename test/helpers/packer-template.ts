import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** The shipped template (written for the Packer build-ami installs, 1.13.1 with the amazon plugin). */
export const TEMPLATE_DIR = path.resolve(__dirname, '../../templates/packer');

/** What the Packer 1.6 of the test machine does not know, removed from a copy of the shipped template. */
export const NEWER_PACKER_ONLY = [
  /\n {2}metadata_options \{[^}]*\}\n/,
  /\n {2}temporary_security_group_source_public_ip = [^\n]*\n/,
] as const;

/**
 * A copy of the shipped template that the Packer 1.6 installed here runs (it predates the plugin block,
 * metadata_options and temporary_security_group_source_public_ip): everything else (tags, encrypted root,
 * network, watchdog) is the shipped text. Each removed piece must be present, so the copy cannot drift;
 * test/unit/packer-template.test.ts asserts what they say.
 */
export function packer16Copy(dest = mkdtempSync(path.join(tmpdir(), 'mp-tpl16-'))): string {
  cpSync(TEMPLATE_DIR, dest, { recursive: true });
  rmSync(path.join(dest, 'plugins.pkr.hcl'));
  const file = path.join(dest, 'ami.pkr.hcl');
  let text = readFileSync(file, 'utf8');
  for (const re of NEWER_PACKER_ONLY) {
    if (!re.test(text)) throw new Error(`the shipped template no longer has ${re.source}`);
    text = text.replace(re, '\n');
  }
  writeFileSync(file, text);
  return dest;
}
