// Module customization hooks (module.register) for ES modules: they run on Node's loader thread.
//
// resolve: when an importer outside a watched package imports one of that package's public ES
// module entry points, the URL handed back carries "?telly-autoinst" so that load can answer
// with a facade; the package's own files keep their real URLs (and import.meta.url), and the
// original module is evaluated once, at its real URL, as the facade's dependency.
// load: the facade re-exports everything (`export *`), and exports each function or class it
// found in the source under the same name, as the counting proxy the main thread's runtime
// hands out. CommonJS entry points are left to the require hook, which sees them either way.

import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const packages = require('./packages.js');
const discovery = require('./discovery.js');
const { exportsOf } = require('./esm-exports.js');
const { debug } = require('./_env.js');
const { readText } = require('./_files.js');

const MARK = 'telly-autoinst';
const SOURCE_MAX = 16 << 20;
discovery.prepare();
const facades = new Map(); // real URL -> facade source

function marked(url) {
  return typeof url === 'string' && url.includes(`?${MARK}`);
}

function fileOf(url) {
  try {
    return url.startsWith('file:') && !url.includes('?') && !url.includes('#') ? fileURLToPath(url) : null;
  } catch (_) {
    return null;
  }
}

/** Names and kinds of a module and, without overriding them, of the modules it star-exports. */
function namesOf(url, depth = 0) {
  const file = fileOf(url);
  const { names, stars } = exportsOf(readText(file, SOURCE_MAX)); // a regular file only: never a FIFO's hang
  if (depth > 8) return names;
  const fromStars = new Map();
  const ambiguous = new Set();
  for (const specifier of stars) {
    if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue; // other packages: never counted
    let sub;
    try {
      sub = namesOf(new URL(specifier, url).href, depth + 1);
    } catch (_) {
      continue; // unreadable: its names still pass through `export *`, uncounted
    }
    for (const [name, kind] of sub) {
      if (name === 'default') continue;
      if (fromStars.has(name)) ambiguous.add(name);
      else fromStars.set(name, kind);
    }
  }
  for (const [name, kind] of fromStars) {
    // Two star exports of one name cancel out in ESM: leave such a name to `export *` as well.
    if (!names.has(name) && !ambiguous.has(name)) names.set(name, kind);
  }
  return names;
}

function facade(url) {
  const names = namesOf(url);
  const real = JSON.stringify(url);
  const live = [];
  const wrapped = [];
  for (const [name, kind] of names) {
    // let/var bindings may be reassigned by the module: re-export them live, never a snapshot.
    if (kind === 'let' || kind === 'var' || kind === 'namespace') live.push(name);
    else wrapped.push(name);
  }
  const q = (name) => JSON.stringify(name);
  const lines = [
    `import * as $ns from ${real};`,
    `export * from ${real};`,
    `const $rt = globalThis[Symbol.for(${q(MARK)})];`,
    `const $w = $rt ? $rt.esm(${real}) : null;`,
  ];
  if (live.length) lines.push(`export { ${live.map((n) => `${q(n)} as ${q(n)}`).join(', ')} } from ${real};`);
  if (wrapped.length) {
    lines.push(`let ${wrapped.map((_, i) => `$${i}`).join(', ')};`);
    lines.push(`export { ${wrapped.map((n, i) => `$${i} as ${q(n)}`).join(', ')} };`);
    lines.push('function $fill() {', '  let pending = 0;');
    wrapped.forEach((n, i) => {
      // A binding still in its temporal dead zone (an import cycle through this facade) is retried later.
      lines.push(`  if ($${i} === undefined) try { $${i} = $w ? $w(${q(n)}, $ns[${q(n)}]) : $ns[${q(n)}]; } catch { pending++; }`);
    });
    lines.push('  return pending;', '}', 'if ($fill() && $rt) $rt.retry($fill);');
  }
  return `${lines.join('\n')}\n`;
}

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  try {
    const parent = context.parentURL;
    if (!parent || marked(parent) || result.format !== 'module') return result;
    const file = fileOf(result.url);
    if (file === null) return result;
    const pkg = packages.packageOfFile(file);
    if (pkg === null || !pkg.entries.has(file)) return result;
    const parentFile = fileOf(parent);
    if (parentFile !== null) {
      const from = packages.packageOfFile(parentFile);
      if (from !== null && from.root === pkg.root) return result; // the package importing itself
    }
    if (discovery.projectOf(pkg) === null) return result;
    if (!facades.has(result.url)) facades.set(result.url, facade(result.url));
    return Object.assign({}, result, { url: `${result.url}?${MARK}`, shortCircuit: true });
  } catch (err) {
    debug(`not counting ${result.url}`, err); // a source this reader cannot follow stays untouched
    return result;
  }
}

export async function load(url, context, nextLoad) {
  if (marked(url)) {
    const real = url.slice(0, url.indexOf(`?${MARK}`));
    const source = facades.get(real);
    if (source !== undefined) return { format: 'module', source, shortCircuit: true };
  }
  return nextLoad(url, context);
}
