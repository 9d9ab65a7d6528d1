'use strict';
// One counted call in the Node client: its overhead over a plain call, as a ratio to a bare Proxy
// pass-through's (a Proxy whose traps only forward; the counting proxy adds one increment).
// Variants run in turn, round after round (plain, bare, counted, plain, ...), and medians of the
// per-call times are compared: ratio = (counted - plain) / (bare - plain).
// `node node/benchmarks/call_overhead.js [--quick] [--json]`; benchmarks/node_call_overhead.py
// puts its rows into `python -m benchmarks`.

const wrap = require('../lib/wrap');

const project = { project_id: 'bench', include: ['*'], exclude: [] };

function makeModule() {
  // A fresh copy per variant, so V8's feedback for one never serves another.
  return new Function(`
    function fn(a) { return a + 1; }
    class Kind { constructor(a) { this.a = a; } method(a) { return a + this.a; } }
    return { fn, Kind };
  `)();
}

function bareProxy(target) {
  // Forwards exactly as the counting proxy does (the constructor sees its own class as
  // new.target), without counting: the difference is the cost of counting alone.
  const proxy = new Proxy(target, {
    apply: (t, self, args) => Reflect.apply(t, self, args),
    construct: (t, args, nt) => Reflect.construct(t, args, nt === proxy ? t : nt),
  });
  return proxy;
}

function variants() {
  const plain = makeModule();
  const bare = makeModule();
  bare.Kind.prototype.method = bareProxy(bare.Kind.prototype.method);
  const bareExports = { fn: bareProxy(bare.fn), Kind: bareProxy(bare.Kind) };
  const counted = wrap.cjsExports(makeModule(), 'bench', project);
  const pkg = { plain, bare: bareExports, counted };
  // Each variant gets its own compiled loops: closures from one source location would share V8's
  // call-site feedback, which would mix the variants' timings.
  const loop = (body) => new Function('m', 'obj', 'Kind', 'fn', 'n', `let s = 0; for (let i = 0; i < n; i++) s += ${body}; return s;`);
  return Object.fromEntries(Object.entries(pkg).map(([label, m]) => {
    const { fn, Kind } = m;
    const obj = new Kind(1);
    const bodies = { function: 'fn(i)', method: 'obj.method(i)', construct: 'new Kind(i).a', 'exports property read + call': 'm.fn(i)' };
    return [label, Object.fromEntries(Object.entries(bodies).map(([kind, body]) => {
      const compiled = loop(body);
      return [kind, (n) => compiled(m, obj, Kind, fn, n)];
    }))];
  }));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function measure(quick) {
  const [rounds, number] = quick ? [5, 200000] : [11, 2000000];
  const all = variants();
  let sink = 0;
  const rows = [];
  for (const kind of Object.keys(all.plain)) {
    const samples = { plain: [], bare: [], counted: [] };
    for (const label of Object.keys(samples)) sink += all[label][kind](number); // warm-up, untimed
    for (let r = 0; r < rounds; r++) {
      for (const label of Object.keys(samples)) {
        const start = process.hrtime.bigint();
        sink += all[label][kind](number);
        samples[label].push(Number(process.hrtime.bigint() - start) / number);
      }
    }
    const ns = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
    rows.push({
      case: `one counted call, Node ${process.versions.node}: ${kind}`,
      measured: 'overhead over a plain call, ratio to a bare Proxy pass-through\'s',
      value: (ns.counted - ns.plain) / (ns.bare - ns.plain),
      target: '<= 1.10',
      detail: `medians of ${rounds} interleaved rounds x ${number.toLocaleString('en')} calls: plain ${ns.plain.toFixed(1)} ns, `
        + `bare Proxy ${ns.bare.toFixed(1)} ns, counted ${ns.counted.toFixed(1)} ns per call`,
      ns,
    });
  }
  if (sink === 0.5) console.log(sink); // keeps the loops' results alive
  return rows;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const rows = measure(args.includes('--quick'));
  if (args.includes('--json')) process.stdout.write(`${JSON.stringify(rows)}\n`);
  else for (const r of rows) console.log(`${r.case}: ratio ${r.value.toFixed(2)} (${r.detail})`);
}

module.exports = { measure };
