'use strict';
// The export reader behind the ES module facades: every form of export, and nothing that only
// looks like one (strings, templates, comments, regular expressions, property names).

const test = require('node:test');
const assert = require('assert');
const { exportsOf, LexError } = require('../lib/esm-exports');

test('every export form is found with its kind', () => {
  const { names, stars } = exportsOf(`#!/usr/bin/env node
// export function nope() {}
/* export class Nope {} */
import x from './y.js';
const re = /export function fake\\/[/]/g, t = \`export \${ {a: 1}.a } const z\`, s = 'export const q = 1';
export function f(a, b = {c: 1}) { return a / b / 2; }
export async function g() {}
export function* gen() {}
export async function* agen() {}
export class C { #p = 1; m() { return \`x\${this.#p}\`; } }
export const k = () => 1, { d, e: [ee, , ...rest], ['x' + 1]: comp } = obj, h = (1, 2)
export let counter = 0
export var v;
let local1 = 2; function local2() {}
export { local1, local2 as l2, x as default, x as "str name" };
export { a as aa, b } from './other.js';
export * from './star.js';
export * as ns from './ns.js';
const o = { export: 1 }; o.export;
`);
  assert.deepStrictEqual(Object.fromEntries(names), {
    f: 'function', g: 'function', gen: 'function', agen: 'function', C: 'class', k: 'const', d: 'const', ee: 'const',
    rest: 'const', comp: 'const', h: 'const', counter: 'let', v: 'var', local1: 'let', l2: 'function',
    default: 'unknown', 'str name': 'unknown', aa: 'unknown', b: 'unknown', ns: 'namespace',
  });
  assert.deepStrictEqual(stars, ['./star.js']);
});

test('default exports of each kind', () => {
  assert.strictEqual(exportsOf('export default class {}').names.get('default'), 'class');
  assert.strictEqual(exportsOf('export default async function () {}').names.get('default'), 'function');
  assert.strictEqual(exportsOf('export default { a: 1 };').names.get('default'), 'unknown');
  assert.strictEqual(exportsOf('function f() {}\nexport { f as default };').names.get('default'), 'function');
});

test('sources beyond the reader are refused, so the loader leaves them alone', () => {
  assert.throws(() => exportsOf('export const s = "unterminated'), LexError);
  assert.throws(() => exportsOf('export type T = string;'), LexError);
  assert.throws(() => exportsOf('function f() {'), LexError);
});
