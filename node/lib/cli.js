'use strict';
// The command line: tables of commands and options that call the handlers. main() is the only
// place where errors become exit codes: 0 success, 1 a problem was found (--dry-run saw a
// malformed config), 2 a usage or configuration error. To add a command, add a row.

const { ConfigError } = require('./settings');

// name, help, positional arguments, handler ("module:function", relative to lib/), and options
// that take a value: [flag, key in the handler's arguments, metavar, help].
const COMMANDS = [
  ['optin', 'send reports for a package (its name or project id; required in opt-in mode)', ['project_id'], 'commands:optin'],
  ['optout', 'never send reports for a package (its name or project id)', ['project_id'], 'commands:optout'],
  ['enable', 'turn telly-autoinst back on for every project (removes ~/.telly_disable)', [], 'commands:enable'],
  ['disable', 'turn telly-autoinst off for every project (creates ~/.telly_disable)', [], 'commands:disable'],
  ['status', 'show what is on, for which project, and why', [], 'commands:status'],
  ['show', 'print the reports that would be sent now, without sending', [], 'commands:show'],
  ['purge', 'remove every file telly-autoinst keeps (salt, lists, notices, locks, cache, spool); run it before uninstalling',
    [], 'commands:purge'],
  ['notice', 'print the README notice for an opted-in package, built from its own settings', [], 'commands:notice', [
    ['--package', 'package', 'NAME', 'package name (needed when several opted in)'],
    ['--format', 'format', 'FORMAT', 'md (default), rst or text'],
  ]],
];

// flag, help, handler: kept as options because CI scripts call `npx telly-autoinst --dry-run`.
const OPTIONS = [
  ['--dry-run', 'list every watched package, where its settings came from and what would be counted', 'dryrun:cliDryRun'],
];

// Flags every command accepts, as data too: flag, key in the handler's arguments, help.
const FLAGS = [['--json', 'json', 'print machine-readable JSON']];

function load(target) {
  const [mod, fn] = target.split(':');
  return require(`./${mod}`)[fn];
}

function usage() {
  const lines = ['usage: npx telly-autoinst [--dry-run] [--json] [COMMAND ...]', '',
    'Privacy-friendly usage statistics for npm packages that opt in (the Node client of telly_autoinst).', '',
    'options:'];
  for (const [flag, help] of OPTIONS) lines.push(`  ${flag.padEnd(22)}${help}`);
  for (const [flag, , help] of FLAGS) lines.push(`  ${flag.padEnd(22)}${help}`);
  lines.push('', 'commands:');
  for (const [name, help, positionals, , options = []] of COMMANDS) {
    lines.push(`  ${[name, ...positionals.map((p) => p.toUpperCase())].join(' ').padEnd(22)}${help}`);
    for (const [flag, , metavar, optionHelp] of options) lines.push(`    ${`${flag} ${metavar}`.padEnd(20)}${optionHelp}`);
  }
  return lines.join('\n');
}

/** Parse ``argv`` against the tables: [handler, args] or a usage error message. */
function parse(argv) {
  const args = {};
  const words = [];
  const valued = []; // [flag, value] of options that take one, checked against the command below
  let option = null;
  for (let i = 0; i < argv.length; i += 1) {
    const word = argv[i];
    const flag = FLAGS.find(([f]) => f === word);
    if (flag) args[flag[1]] = true;
    else if (COMMANDS.some((c) => (c[4] || []).some(([f]) => f === word))) {
      if (i + 1 >= argv.length) return { error: `${word} needs a value` };
      valued.push([word, argv[i + 1]]);
      i += 1;
    }
    else if (OPTIONS.some(([f]) => f === word)) option = OPTIONS.find(([f]) => f === word);
    else if (word === '-h' || word === '--help') return { help: true };
    else if (word.startsWith('-')) return { error: `unknown option ${word}` };
    else words.push(word);
  }
  if (words.length) {
    const command = COMMANDS.find(([name]) => name === words[0]);
    if (!command) return { error: `unknown command ${words[0]}` };
    const [, , positionals, target, options = []] = command;
    if (words.length - 1 !== positionals.length) {
      return { error: `${words[0]} takes ${positionals.map((p) => p.toUpperCase()).join(' ') || 'no argument'}` };
    }
    positionals.forEach((p, i) => { args[p] = words[i + 1]; });
    for (const [flag, value] of valued) {
      const known = options.find(([f]) => f === flag);
      if (!known) return { error: `${words[0]} takes no option ${flag}` };
      args[known[1]] = value;
    }
    return { target, args };
  }
  if (valued.length) return { error: `${valued[0][0]} needs a command` };
  if (option) return { target: option[2], args };
  return { help: true, error: argv.length ? null : 'no command given' };
}

async function main(argv = process.argv.slice(2)) {
  const parsed = parse(argv);
  if (parsed.help || parsed.error) {
    process.stderr.write(`${parsed.error ? `telly-autoinst: ${parsed.error}\n` : ''}${usage()}\n`);
    return parsed.error ? 2 : 0;
  }
  try {
    const [text, code] = await load(parsed.target)(parsed.args);
    if (text) process.stdout.write(`${text}\n`);
    return code;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`telly-autoinst: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

module.exports = { main, parse, COMMANDS, OPTIONS, FLAGS };
