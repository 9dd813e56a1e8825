import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

export const ROOT = path.resolve(__dirname, '../..');

export interface OrbParam {
  type: string;
  default?: unknown;
  enum?: string[];
  description?: string;
}
export interface OrbComponent {
  description?: string;
  parameters?: Record<string, OrbParam>;
  steps?: unknown[];
  executor?: unknown;
  usage?: Record<string, unknown>;
  [key: string]: unknown;
}
export interface PackedOrb {
  version: number;
  description: string;
  commands: Record<string, OrbComponent>;
  jobs: Record<string, OrbComponent>;
  executors: Record<string, OrbComponent>;
  examples: Record<string, OrbComponent>;
}

export function loadPackedOrb(file = path.join(ROOT, 'orb/orb.yml')): PackedOrb {
  return parse(readFileSync(file, 'utf8')) as PackedOrb;
}

const REF = /<<\s*parameters\.([A-Za-z0-9_-]+)\s*>>/g;

/** Every `<< parameters.x >>` used anywhere in a value. */
export function parameterRefs(value: unknown): string[] {
  const text = JSON.stringify(value) ?? '';
  return [...text.matchAll(REF)].map((m) => m[1]);
}

/** CircleCI's parameter substitution: a whole-value reference keeps the value's type (steps, booleans). */
export function substitute(value: unknown, params: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const whole = /^<<\s*parameters\.([A-Za-z0-9_-]+)\s*>>$/.exec(value.trim());
    if (whole) return params[whole[1]];
    return value.replace(REF, (_, name: string) => String(params[name]));
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, params));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, params)]));
  }
  return value;
}

export function defaultsOf(parameters: Record<string, OrbParam> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(parameters ?? {}).map(([k, p]) => [k, p.default]));
}

/**
 * Steps after substitution, in the form the config parser knows: `steps:` parameters and `when:` blocks
 * expanded (the parser has neither), bare command names written as `{name: {}}`.
 */
export function flattenSteps(steps: unknown[]): unknown[] {
  return steps.flatMap((s): unknown[] => {
    if (typeof s === 'string') return s === 'checkout' ? [s] : [{ [s]: {} }];
    const obj = s as Record<string, unknown>;
    if ('steps' in obj && Object.keys(obj).length === 1) {
      // before substitution a `steps` parameter is still the string `<< parameters.x >>`
      return Array.isArray(obj.steps) ? flattenSteps(obj.steps) : [];
    }
    if ('when' in obj && Object.keys(obj).length === 1) {
      const w = obj.when as { condition: unknown; steps: unknown[] };
      return w.condition ? flattenSteps(w.steps) : [];
    }
    const [key, args] = Object.entries(obj)[0];
    if (key === 'run' && args && typeof args === 'object') {
      const run = args as { environment?: Record<string, unknown> };
      // environment variables are strings once CircleCI sets them; the parser's schema wants strings
      if (run.environment) {
        const environment = Object.fromEntries(
          Object.entries(run.environment).map(([k, v]) => [k, String(v)]),
        );
        return [{ run: { ...run, environment } }];
      }
    }
    return [s];
  });
}
