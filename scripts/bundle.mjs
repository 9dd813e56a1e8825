// Builds the committed bundle: one esbuild build of src/entry.ts into dist/lib, the packages only some
// commands use in their own files under dist/lib/vendor, and three small entry files (the action's main and
// post steps, the CLI) that call into it.
//
// Compiling the bundle is most of a cold start, and the action's steps have no code cache. So what only a
// few commands need is not in dist/lib/index.js: the EC2 client (train on EC2, build-ami, prune-amis), the
// SageMaker and CloudWatch Logs clients (train-engine sagemaker, deploy, endpoint-status, undeploy), the
// tool cache (Packer download) and the HTTP client @actions/core loads for OIDC tokens (never used here)
// each sit in a vendor file, required on first use (src/wiring*.ts load their adapters lazily already). So do
// the STS, SSO and sign-in clients the SDK's credential providers load only for those kinds of credentials.
// Only npm packages move: our own modules stay in one file, so `instanceof UserError` and friends hold.
//
// Packages are taken in their ES module builds where they ship one (mainFields: module first), so esbuild
// drops what we never call (the SDK's other protocols, zod's other checks): the bundle is about 0.9 MB
// instead of 1.5 MB, and compiling it was the larger part of each action step.
//
// The build goes to dist.new and replaces dist/ only when it is complete, so an interrupted build never
// leaves the committed dist/ deleted.
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

// BUNDLE_OUT builds elsewhere (npm run gen runs the README's demo with a fresh bundle of src/ in a temp folder)
const target = process.env.BUNDLE_OUT || 'dist';
const out = `${target}.new`;
rmSync(out, { recursive: true, force: true });

const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'es2022',
  minify: true,
  legalComments: 'inline', // keep the /*! license notices
  logLevel: 'warning',
  mainFields: ['module', 'main'],
};

/** package -> its vendor file, loaded when a module that imports it is first evaluated */
const vendor = {
  '@aws-sdk/client-ec2': 'client-ec2.js',
  '@aws-sdk/client-sagemaker': 'client-sagemaker.js',
  '@aws-sdk/client-cloudwatch-logs': 'client-cloudwatch-logs.js',
  '@actions/tool-cache': 'tool-cache.js',
  '@aws-sdk/nested-clients/sts': 'nested-clients-sts.js',
  '@aws-sdk/nested-clients/sso': 'nested-clients-sso.js',
  '@aws-sdk/nested-clients/sso-oidc': 'nested-clients-sso-oidc.js',
  '@aws-sdk/nested-clients/signin': 'nested-clients-signin.js',
};

/**
 * @actions/core requires @actions/http-client at start-up for getIDToken, which we never call, and
 * @actions/exec (with @actions/io and node's assert) for platform details: each gets an object that loads
 * the real module on first property access (exec stays in the bundle, evaluated late). (@actions/core is CommonJS and reads
 * properties at call time, so a Proxy is enough; ESM importers would copy the keys and load it at once.)
 */
const lazy = {
  '@actions/http-client': "require('./vendor/http-client.js').httpClient",
  '@actions/http-client/lib/auth': "require('./vendor/http-client.js').auth",
  '@actions/exec': "require('@actions/exec')",
};

const splitVendor = {
  name: 'split-vendor',
  setup(b) {
    b.onResolve({ filter: /^\.\/vendor\// }, (a) => ({ path: a.path, external: true }));
    const split = new RegExp(`^(${Object.keys(vendor).map((p) => p.replace(/[/.-]/g, '\\$&')).join('|')})$`);
    b.onResolve({ filter: split }, (a) =>
      // an external import() would stay a native ES import of a CommonJS file, which sees no named exports
      // in a minified module.exports: a require() inside a bundled stub gives them, and still loads late
      a.kind === 'dynamic-import'
        ? { path: a.path, namespace: 'vendor-stub' }
        : { path: `./vendor/${vendor[a.path]}`, external: true },
    );
    // the SDK's ES modules import('node:http') late; a native import() of a built-in builds its ES module
    // facade, which reads every export of node:http and so loads fetch's undici (about 15 ms of each start)
    b.onResolve({ filter: /^node:/ }, (a) =>
      a.kind === 'dynamic-import' ? { path: a.path, namespace: 'builtin-stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin-stub' }, (a) => ({
      loader: 'js',
      contents: `module.exports = require('${a.path}');\n`,
    }));
    b.onLoad({ filter: /.*/, namespace: 'vendor-stub' }, (a) => ({
      loader: 'js',
      contents: `module.exports = require('./vendor/${vendor[a.path]}');\n`,
    }));
    b.onResolve({ filter: /^@actions\/(http-client(\/lib\/auth)?|exec)$/ }, (a) => {
      if (!/[\\/]@actions[\\/]core[\\/]/.test(a.importer)) return undefined;
      return { path: a.path, namespace: 'lazy' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, (a) => ({
      loader: 'js',
      resolveDir: process.cwd(),
      contents:
        `let real;\n` +
        `module.exports = new Proxy({}, {\n` +
        // @actions/core takes exec through __importStar, which asks __esModule first: answered without
        // loading (exec is compiled TypeScript, so true), the module itself is still read at call time
        (a.path === '@actions/exec'
          ? `  get: (_, k) => (k === '__esModule' ? true : (real ??= ${lazy[a.path]})[k]),\n`
          : `  get: (_, k) => (real ??= ${lazy[a.path]})[k],\n`) +
        `  has: (_, k) => k in (real ??= ${lazy[a.path]}),\n` +
        `});\n`,
    }));
  },
};

await build({
  ...common,
  entryPoints: ['src/entry.ts'],
  outfile: `${out}/lib/index.js`,
  plugins: [splitVendor],
});

const vendorEntries = {
  'client-ec2.js': "module.exports = require('@aws-sdk/client-ec2');",
  'client-sagemaker.js': "module.exports = require('@aws-sdk/client-sagemaker');",
  'client-cloudwatch-logs.js': "module.exports = require('@aws-sdk/client-cloudwatch-logs');",
  'tool-cache.js': "module.exports = require('@actions/tool-cache');",
  ...Object.fromEntries(
    Object.entries(vendor)
      .filter(([pkg]) => pkg.startsWith('@aws-sdk/nested-clients/'))
      .map(([pkg, file]) => [file, `module.exports = require('${pkg}');`]),
  ),
  'http-client.js':
    "module.exports = { httpClient: require('@actions/http-client'), auth: require('@actions/http-client/lib/auth') };",
};
for (const [file, contents] of Object.entries(vendorEntries)) {
  await build({
    ...common,
    stdin: { contents, resolveDir: '.', loader: 'js', sourcefile: `vendor/${file}` },
    outfile: `${out}/lib/vendor/${file}`,
  });
}

const header = '// Generated by scripts/bundle.mjs: do not edit.\n';
const entries = {
  'main/index.js': "require('../lib/index.js').runActionMain();\n",
  // The post step runs after every job that used the action. A command's cleanup acts only on state its
  // run saved (train: the instance and key pair), so without such state the bundle is not even loaded.
  'post/index.js':
    'const saved = Object.keys(process.env).some((k) => k.startsWith("STATE_") && k !== "STATE_command" && process.env[k]);\n' +
    "if (process.env.STATE_command && saved) require('../lib/index.js').runActionPost();\n",
  'cli/index.js': readFileSync('scripts/cli-entry.cjs', 'utf8'),
};
for (const [file, body] of Object.entries(entries)) {
  mkdirSync(`${out}/${file.slice(0, file.lastIndexOf('/'))}`, { recursive: true });
  writeFileSync(`${out}/${file}`, body.startsWith('#!') ? body : header + body);
}
chmodSync(`${out}/cli/index.js`, 0o755);

rmSync(target, { recursive: true, force: true });
renameSync(out, target);
