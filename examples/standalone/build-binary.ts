// `npm run build:binary`: one self-contained `cairn` executable for this platform (a Node
// single-executable application): the whole app bundled by esbuild into one script, its runtime
// files (the web UI's modules, etcd's protocol definitions) embedded as assets, injected into a
// copy of the Node 24 binary. Runs with no Node installed and no node_modules.
//
//   node examples/standalone/build-binary.ts [--out dist/cairn]

import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const outArg = process.argv.indexOf('--out');
const out = resolve(root, outArg > 0 ? (process.argv[outArg + 1] ?? 'dist/cairn') : 'dist/cairn');
const work = join(root, 'dist', 'sea');
mkdirSync(work, { recursive: true });
mkdirSync(dirname(out), { recursive: true });

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

// 1. Assets: files the app reads at run time, embedded in the executable.
const assets: Record<string, string> = {};
const addDir = (dir: string, filter: (f: string) => boolean) => {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isFile() && filter(f)) assets[relative(root, p)] = p;
  }
};
assets['package.json'] = join(root, 'package.json');
addDir(join(root, 'node_modules/etcd3/proto'), (f) => f.endsWith('.proto'));
if (existsSync(join(root, 'lib/admin/ui'))) addDir(join(root, 'lib/admin/ui'), (f) => f.endsWith('.ts'));

// 2. Bundle. A SEA runs one CommonJS script whose `require` only loads Node's built-ins, and
//    `import.meta.url` does not exist there. So the bundle starts by writing the embedded assets
//    to a versioned cache directory (once), and every module that reads files next to itself is
//    pointed there: `import.meta.url` (the web UI's modules, package.json) and `__dirname`
//    (etcd3 loads its .proto files relative to its own directory when it is first required).
const banner = `
var __cairnAssetsDir = (function () {
  var sea = require('node:sea'), path = require('node:path'), fs = require('node:fs'), os = require('node:os');
  var keys = ${JSON.stringify(Object.keys(assets))};
  if (!sea.isSea()) return ${JSON.stringify(root)};
  var dir = path.join(os.tmpdir(), 'cairn-' + ${JSON.stringify(pkg.version)} + '-' + process.getuid() + '-assets');
  for (var i = 0; i < keys.length; i++) {
    var p = path.join(dir, keys[i]);
    if (fs.existsSync(p)) continue;
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p + '.tmp' + process.pid, Buffer.from(sea.getAsset(keys[i])));
    fs.renameSync(p + '.tmp' + process.pid, p);
  }
  return dir;
})();
var __cairnModuleUrl = require('node:url').pathToFileURL(require('node:path').join(__cairnAssetsDir, 'lib/admin/ui-assets.ts')).href;
var __cairnDirname = require('node:path').join(__cairnAssetsDir, 'node_modules/etcd3/lib');
`;
const bundle = join(work, 'cairn.cjs');
await build({
  entryPoints: [join(root, 'examples/standalone/sea-main.ts')],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  outfile: bundle,
  logLevel: 'warning',
  define: { 'import.meta.url': '__cairnModuleUrl', __dirname: '__cairnDirname' },
  banner: { js: banner },
});

// 3. The SEA preparation blob, then a copy of this Node binary with the blob injected.
const seaConfig = join(work, 'sea-config.json');
const blob = join(work, 'cairn.blob');
writeFileSync(
  seaConfig,
  JSON.stringify({
    main: bundle,
    output: blob,
    disableExperimentalSEAWarning: true,
    useCodeCache: false,
    assets,
  }),
);
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'inherit' });
copyFileSync(process.execPath, out);
execFileSync(
  process.execPath,
  [
    join(root, 'node_modules/postject/dist/cli.js'),
    out,
    'NODE_SEA_BLOB',
    blob,
    '--sentinel-fuse',
    'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2',
  ],
  { stdio: 'inherit' },
);
const mb = (statSync(out).size / 1024 / 1024).toFixed(1);
process.stdout.write(
  `built ${relative(root, out)} (${mb} MB, Node ${process.version}, ${Object.keys(assets).length} assets)\n`,
);
