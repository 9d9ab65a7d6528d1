'use strict';
// The counting proxies keep what callers can observe: name, length, prototype, instanceof,
// new.target, this, async and generator behaviour, statics, toString, and errors unchanged.

const test = require('node:test');
const assert = require('assert');
const wrap = require('../lib/wrap');
const counters = require('../lib/counters');

let serial = 0;
function project(extra = {}) {
  serial += 1;
  return Object.assign({ project_id: `wrap-test-${serial}`, include: ['*'], exclude: [] }, extra);
}

test('a function keeps name, length, this, toString, and errors pass through unchanged', () => {
  const p = project();
  function add(a, b) { return a + b + (this && this.bonus ? this.bonus : 0); }
  const thrown = new RangeError('no');
  function boom() { throw thrown; }
  const exportsObj = wrap.cjsExports({ add, boom }, 'pkg', p);
  const wrapped = exportsObj.add;
  assert.notStrictEqual(wrapped, add);
  assert.strictEqual(exportsObj.add, wrapped, 'one identity per export');
  assert.strictEqual(wrapped.name, 'add');
  assert.strictEqual(wrapped.length, 2);
  assert.strictEqual(wrapped.toString(), add.toString());
  assert.strictEqual(`${wrapped}`, add.toString());
  assert.strictEqual(wrapped.call({ bonus: 10 }, 1, 2), 13);
  assert.throws(() => exportsObj.boom(), (err) => err === thrown);
  assert.strictEqual(exportsObj.add(1, 2), 3);
  assert.deepStrictEqual(counters.take(p), { 'pkg.add': 2, 'pkg.boom': 1 });
});

test('async functions and generators behave as before', async () => {
  const p = project();
  async function later(x) { return x * 2; }
  function* gen() { yield 1; yield 2; }
  async function* agen() { yield 3; }
  const e = wrap.cjsExports({ later, gen, agen }, 'pkg', p);
  const promise = e.later(2);
  assert.ok(promise instanceof Promise);
  assert.strictEqual(await promise, 4);
  assert.strictEqual(Object.getPrototypeOf(e.later), Object.getPrototypeOf(later), 'still an AsyncFunction');
  assert.deepStrictEqual([...e.gen()], [1, 2]);
  const got = [];
  for await (const v of e.agen()) got.push(v);
  assert.deepStrictEqual(got, [3]);
  assert.deepStrictEqual(counters.take(p), { 'pkg.agen': 1, 'pkg.gen': 1, 'pkg.later': 1 });
});

test('a class keeps prototype, instanceof, statics, subclassing and new.target; methods are counted', () => {
  const p = project();
  let seenTarget = null;
  class Base {
    constructor(n) { seenTarget = new.target; this.n = n; }
    bump() { this.n += 1; return this.n; }
    static make() { return new Base(5); }
    _hidden() { return 1; }
    get value() { return this.n; }
  }
  const Wrapped = wrap.exported(Base, 'Base', 'pkg', p);
  assert.notStrictEqual(Wrapped, Base);
  assert.strictEqual(Wrapped.prototype, Base.prototype);
  assert.strictEqual(Wrapped.name, 'Base');
  const b = new Wrapped(1);
  assert.strictEqual(seenTarget, Base, 'the constructor sees its own class as new.target');
  assert.ok(b instanceof Wrapped && b instanceof Base);
  assert.strictEqual(b.bump(), 2);
  assert.strictEqual(b.value, 2);
  assert.strictEqual(b._hidden(), 1);
  assert.strictEqual(Wrapped.make().n, 5);
  class Sub extends Wrapped { bump() { return super.bump() * 10; } }
  const s = new Sub(1);
  assert.strictEqual(seenTarget, Sub);
  assert.ok(s instanceof Sub && s instanceof Wrapped);
  assert.strictEqual(s.bump(), 20);
  assert.throws(() => Wrapped(1), TypeError, 'calling a class without new still throws');
  assert.deepStrictEqual(counters.take(p),
    { 'pkg.Base': 3, 'pkg.Base.bump': 2, 'pkg.Base.make': 1 });
});

test('include and exclude patterns decide which keys count', () => {
  const p = project({ exclude: ['pkg.C.*', 'pkg.skip'] });
  class C { m() { return 1; } }
  const e = wrap.cjsExports({ C, skip() { return 2; }, keep() { return 3; } }, 'pkg', p);
  new e.C().m();
  e.skip();
  e.keep();
  assert.deepStrictEqual(counters.take(p), { 'pkg.C': 1, 'pkg.keep': 1 });
});

test('a function module.exports counts as default and its properties as named exports', () => {
  const p = project();
  function greet(name) { return `hi ${name}`; }
  greet.loud = (name) => greet(name).toUpperCase();
  const e = wrap.cjsExports(greet, 'pkg', p);
  assert.strictEqual(e('a'), 'hi a');
  assert.strictEqual(e.loud('b'), 'HI B');
  assert.strictEqual(e.name, 'greet');
  assert.strictEqual(e.toString(), greet.toString());
  assert.deepStrictEqual(counters.take(p), { 'pkg.default': 1, 'pkg.loud': 1 });
});

test('a plain exports object is counted in place: same object, writable, frozen slots left alone', () => {
  const p = project();
  const inner = { g() { return 4; } };
  const real = { f() { return 1; } };
  Object.defineProperty(real, 'frozen', { value() { return 2; }, enumerable: true });
  Object.defineProperty(real, 'viaGetter', { get() { return inner.g; }, enumerable: true, configurable: true });
  const e = wrap.cjsExports(real, 'pkg', p);
  assert.strictEqual(e, real);
  assert.strictEqual(e.frozen(), 2);
  assert.strictEqual(e.viaGetter(), 4);
  assert.strictEqual(e.viaGetter, e.viaGetter);
  assert.strictEqual(e.f(), 1);
  e.f = () => 'stub'; // a test that stubs an export replaces it, as before
  assert.strictEqual(real.f(), 'stub');
  assert.deepStrictEqual(counters.take(p), { 'pkg.f': 1, 'pkg.viaGetter': 1 });
});

test('exports behind fixed getters (TypeScript re-exports) are counted through a Proxy that stays live', () => {
  const p = project();
  const inner = { g() { return 4; } };
  const real = {};
  Object.defineProperty(real, 'g', { get() { return inner.g; }, enumerable: true });
  Object.defineProperty(real, '__esModule', { value: true });
  const e = wrap.cjsExports(real, 'pkg', p);
  assert.notStrictEqual(e, real);
  assert.strictEqual(e.g(), 4);
  real.later = () => 3; // a package that adds an export after its first require
  assert.strictEqual(e.later(), 3);
  e.h = () => 5; // writes reach the real object
  assert.strictEqual(real.h(), 5);
  assert.deepStrictEqual(Object.keys(e), Object.keys(real));
  assert.strictEqual(e.__esModule, true);
  assert.deepStrictEqual(counters.take(p), { 'pkg.g': 1, 'pkg.later': 1 });
});

test('an excluded class stays the very same class, and its methods are still counted', () => {
  const p = project({ exclude: ['pkg.Klass'] });
  class Klass { m() { return 1; } }
  const e = wrap.cjsExports({ Klass }, 'pkg', p);
  assert.strictEqual(e.Klass, Klass);
  const k = new e.Klass();
  assert.strictEqual(k.constructor, e.Klass);
  assert.strictEqual(k.m(), 1);
  assert.deepStrictEqual(counters.take(p), { 'pkg.Klass.m': 1 });
});

test('built-ins and bound functions a package exports are never counted, and never changed', () => {
  const p = project();
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).map((n) => Object.prototype[n]);
  assert.strictEqual(wrap.cjsExports(Object, 'pkg', p), Object, 'module.exports = Object (es-object-atoms)');
  const bound = function f() { return 1; }.bind(null);
  const e = wrap.cjsExports({ keys: Object.keys, Map, bound }, 'pkg', p);
  assert.strictEqual(e.keys, Object.keys);
  assert.strictEqual(e.Map, Map);
  assert.strictEqual(e.bound, bound);
  new e.Map().set(1, 2);
  e.bound();
  assert.deepStrictEqual(Object.getOwnPropertyNames(Object.prototype).map((n) => Object.prototype[n]), protoBefore);
  assert.deepStrictEqual(counters.take(p), {});
});
