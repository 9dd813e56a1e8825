/**
 * Experiment for the cold-start benchmark: runs the CLI bundle with a V8 code cache kept by hand
 * (vm.Script cachedData, what v8-compile-cache does), to see what a compile cache would save on node 20,
 * where NODE_COMPILE_CACHE / module.enableCompileCache() do not exist yet.
 *
 * Usage: node build/bench/code-cache-loader.js <dist/lib/index.js> <cache file> <cli args...>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import * as vm from 'node:vm';

interface InternalModule {
  exports: Record<string, unknown>;
  filename: string;
  paths: string[];
  loaded: boolean;
  require(id: string): unknown;
}

type ModuleCtor = {
  new (id: string, parent?: unknown): InternalModule;
  wrap(source: string): string;
  _nodeModulePaths(dir: string): string[];
};

function main(): void {
  const [libArg, cacheFile, ...cliArgs] = process.argv.slice(2);
  if (!libArg || !cacheFile) throw new Error('usage: code-cache-loader <bundle> <cache file> <cli args...>');
  const file = path.resolve(libArg);
  const M = Module as unknown as ModuleCtor;
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(M.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData });
  const rejected = cachedData !== undefined && script.cachedDataRejected === true;
  if (cachedData === undefined || rejected) {
    // written at exit so the cache also holds the functions this run compiled lazily
    process.once('exit', () => writeFileSync(cacheFile, script.createCachedData()));
  }
  const mod = new M(file, module);
  mod.filename = file;
  mod.paths = M._nodeModulePaths(path.dirname(file));
  const fn = script.runInThisContext() as (
    exports: unknown,
    require: (id: string) => unknown,
    module: unknown,
    filename: string,
    dirname: string,
  ) => void;
  fn.call(mod.exports, mod.exports, (id) => mod.require(id), mod, file, path.dirname(file));
  mod.loaded = true;
  process.argv = [process.argv[0], file, ...cliArgs];
  (mod.exports.runCliProcess as () => void)();
}

main();
