'use strict';
// The README notice an author pastes, built from the package's own "telly" field instead of copied.
// The Node counterpart of telly_autoinst/notice.py: the same blocks, words and wrapping, so both
// clients print identical text for the same settings (tests/test_notice.py runs both). Only the
// package's own field counts: the author's machine (environment, user config) may override
// region or Level II for itself, and that must not leak into what every user reads.

const packages = require('./packages');
const settings = require('./settings');
const { collectorUrl } = require('./discovery');
const { RUNTIMES } = require('./_contract');

const FORMATS = ['md', 'rst', 'text'];
const WIDTH = 100;
const REGION_NAMES = { us: 'US', eu: 'EU' };
// RUNTIMES, the words that differ between the two clients, are the shared contract's.
// Inside a code span, spaces become this while wrapping so a command is never split across lines.
const HARD_SPACE = '\u0000';

/** [name, project settings] of one opted-in package visible from ``cwd``, from its own field only. */
function select(name = null, cwd = process.cwd()) {
  const { candidates } = require('./dryrun');
  const found = new Map();
  const errors = [];
  for (const root of candidates(cwd)) {
    const pkg = packages.info(root, true);
    if (pkg === null || pkg.json.telly === undefined || found.has(pkg.name)) continue;
    try {
      // No environment and no user config: the notice describes what the author declared.
      found.set(pkg.name, settings.projectSettings(pkg.json.telly, `${pkg.name} (package.json "telly")`,
        { name: pkg.name, version: pkg.version, root: pkg.root, env: {}, userConfig: {} }));
    } catch (err) {
      if (!(err instanceof settings.ConfigError)) throw err;
      errors.push(err.message);
    }
  }
  const broken = errors.length ? `; malformed "telly" fields (see --dry-run): ${errors.join('; ')}` : '';
  const names = [...found.keys()].sort();
  if (name === null) {
    if (!names.length) {
      throw new settings.ConfigError('no package visible from here opted in to telly-autoinst, so there is nothing '
        + `to describe (add a "telly" field to its package.json and install it)${broken}`);
    }
    if (names.length > 1) throw new settings.ConfigError(`several packages opted in (${names.join(', ')}); choose one with --package NAME`);
    return [names[0], found.get(names[0])];
  }
  if (found.has(name)) return [name, found.get(name)];
  throw new settings.ConfigError(`package ${JSON.stringify(name)} did not opt in to telly-autoinst or is not installed `
    + `(opted-in packages: ${names.join(', ') || 'none'})${broken}`);
}

function destination(project, url) {
  if (!url) {
    return 'No collector is configured, so reports leave your machine only if you point them somewhere yourself '
      + 'with `TELLY_HTTP_SERVER`.';
  }
  const region = REGION_NAMES[project.region] || project.region;
  let text = `Reports go to our collector at ${url}`;
  text += project.endpoint ? '.' : `, which keeps its data in the ${region} region.`;
  if (!project.endpoint) {
    for (const other of Object.keys(project.endpoints).sort()) {
      if (other === project.region) continue;
      text += ` To send them to our ${REGION_NAMES[other] || other} collector at ${project.endpoints[other]} instead, `
        + `set \`TELLY_REGION=${other}\`.`;
    }
  }
  return text;
}

/** The notice for ``project`` as blocks: ['title', text], ['para', text] or ['list', [items]]. */
function build(name, project, runtime = 'node') {
  const words = RUNTIMES[runtime];
  const { cli, counted } = words;
  const id = project.project_id;
  const url = collectorUrl(project, { http_server: null });
  const blocks = [['title', 'Usage statistics']];
  blocks.push(['para', `${name} counts how it is used with ${words.tool}, a privacy-friendly usage statistics tool, `
    + `so that we know which features, ${words.runtime} versions and platforms to support.`]);
  if (project.mode === 'optin') {
    blocks.push(['para', `Nothing is sent unless you opt in with \`${cli} optin ${id}\`. Once you do, a program that `
      + `uses ${name} sends a short report when it ends:`]);
  } else {
    blocks.push(['para', `If ${words.tool} is installed, a program that uses ${name} sends a short report when it ends:`]);
  }
  const sent = [
    `your ${words.runtime} version and implementation, and how ${words.runtime} was started (${words.modes});`,
    'your operating system and its release, CPU architecture, model and count, and total RAM;',
    'whether it runs in CI (and which CI service), in a container or under WSL;',
    `the version of ${name} and of the packages it depends on;`,
  ];
  if (project.level2) {
    sent.push(`how many times each ${counted} of ${name} was called;`);
    sent.push('salted, keyed hashes (HMAC-SHA-256) of your user name, home directory, machine id and host name, used '
      + 'only to count unique users. The salt never leaves your machine, and our collector re-keys the hashes on '
      + 'arrival and deletes them after its analytics window (35 days by default).');
  } else {
    sent.push(`how many times each ${counted} of ${name} was called.`);
  }
  blocks.push(['list', sent]);
  blocks.push(['para', project.level2
    ? 'It never sends argument values, file contents or paths, environment variables or the command line.'
    : 'It sends no user or machine identifier, not even hashed, and never argument values, file contents or paths, '
      + 'environment variables or the command line.']);
  if (project.level2 && project.level2_plaintext) {
    blocks.push(['para', 'Internal corporate deployments only: if you or your administrator set '
      + '`TELLY_LEVEL2_PLAINTEXT=1`, your user name, home directory, machine id and host name are also sent in plain '
      + 'text, and our collector stores them and shows them to the maintainers of this project on its dashboard if '
      + 'the project there was created to allow it. Without `TELLY_LEVEL2_PLAINTEXT=1` they are sent only as hashes.']);
  }
  blocks.push(['para', destination(project, url)]);
  if (!project.send_from_ci) blocks.push(['para', 'Nothing is sent from CI runs.']);
  blocks.push(['para', 'To see what is sent:']);
  blocks.push(['list', [
    `\`TELLY_SHOW_ME=1 ${words.run}\` prints each report to stderr, byte for byte, as it is sent;`,
    `\`${cli} show\` prints what would be sent now, without sending anything;`,
    `\`${cli} --dry-run\` lists every function and class that would be counted;`,
    `\`${cli} status\` says whether reporting is on for each project, and why.`,
  ]]);
  blocks.push(['para', 'To say no:']);
  blocks.push(['list', [
    `for this project only: \`${cli} optout ${id}\`;`,
    `for every project: set \`TELLY_DISABLE=1\` or \`DO_NOT_TRACK=1\`, or run \`${cli} disable\`.`,
  ]]);
  return blocks;
}

function code(text, format) {
  const parts = text.split('`');
  const mark = { md: '`', rst: '``', text: '' }[format];
  for (let i = 1; i < parts.length; i += 2) parts[i] = mark + parts[i].split(' ').join(HARD_SPACE) + mark;
  return parts.join('');
}

/** Greedy wrapping at WIDTH, as Python's textwrap.wrap without breaking long words or on hyphens. */
function wrap(text, format, indent = '') {
  const lines = [];
  let line = '';
  for (const word of code(text, format).split(' ').filter(Boolean)) {
    const prefix = lines.length ? ' '.repeat(indent.length) : indent;
    if (line && prefix.length + line.length + 1 + word.length > WIDTH) {
      lines.push(prefix + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push((lines.length ? ' '.repeat(indent.length) : indent) + line);
  return lines.join('\n').split(HARD_SPACE).join(' ');
}

/** The notice as Markdown (md), reStructuredText (rst) or plain text (text). */
function render(blocks, format = 'md') {
  if (!FORMATS.includes(format)) throw new settings.ConfigError(`unknown notice format ${JSON.stringify(format)}; use one of ${FORMATS.join(', ')}`);
  const out = blocks.map(([kind, value]) => {
    if (kind === 'title') return format === 'md' ? `## ${value}` : `${value}\n${'='.repeat(value.length)}`;
    if (kind === 'para') return wrap(value, format);
    return value.map((item) => wrap(item, format, '- ')).join('\n');
  });
  return `${out.join('\n\n')}\n`;
}

module.exports = { FORMATS, RUNTIMES, select, build, render };
