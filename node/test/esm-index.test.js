'use strict';
// What decides when the ES module loader hooks are registered: which CommonJS sources may import.
// (Whether a program needs them at all, and the cache of that answer: activation.test.js.)

const test = require('node:test');
const assert = require('assert');
const { mayImport } = require('../lib/esm-index');

test('a CommonJS source may import with import() anywhere, or with a statement that starts a line', () => {
  for (const source of ["import('x')", "const m = await import ('x');", 'f(import(\n  "x"))', "import x from 'y';",
    "\n\t  import { a } from 'b'", '\r\nexport const a = 1;', "x;\nexport default 1", 'a = 1;import("x")', "const m = await import\n  ('x');"]) {
    assert.strictEqual(mayImport(source), true, JSON.stringify(source));
  }
});

test('the words inside other names, as properties or mid-line without a call, do not count', () => {
  for (const source of ['module.exports = 1;', 'exports.f = () => 1;', 'const important = 1;', 'reimport(1)',
    'x.import("a")', 'const imported = require("x");', "// nothing to import here", 'a = { export: 1 }', '', null]) {
    assert.strictEqual(mayImport(source), false, JSON.stringify(source));
  }
});
