'use strict';
// Reads the user's config file (config.toml, shared with the Python client) without a dependency.
// The subset: comments, [tables] and [dotted."quoted".tables], key = value with bare, quoted and
// dotted keys, basic and literal strings, integers, floats, booleans, arrays (over several lines)
// and inline tables. Anything else (multi-line strings, dates, arrays of tables) is refused with
// the line number, so the user learns which line the Node client cannot read.

class TomlError extends Error {}

function parse(text, origin = 'config.toml') {
  const root = {};
  let current = root;
  let pos = 0;
  let line = 1;
  const fail = (what) => { throw new TomlError(`${origin}:${line}: ${what}`); };

  const peek = () => text[pos];
  function skipSpace(newlines) {
    for (;;) {
      const ch = text[pos];
      if (ch === ' ' || ch === '\t' || ch === '\r') pos++;
      else if (ch === '#') { while (pos < text.length && text[pos] !== '\n') pos++; }
      else if (newlines && ch === '\n') { pos++; line++; }
      else return;
    }
  }
  function basicString() {
    pos++;
    if (text.startsWith('""', pos)) fail('multi-line strings are not supported');
    let out = '';
    for (;;) {
      const ch = text[pos++];
      if (ch === undefined || ch === '\n') fail('unterminated string');
      if (ch === '"') return out;
      if (ch !== '\\') { out += ch; continue; }
      const esc = text[pos++];
      const simple = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' }[esc];
      if (simple !== undefined) out += simple;
      else if (esc === 'u' || esc === 'U') {
        const size = esc === 'u' ? 4 : 8;
        const hex = text.slice(pos, pos + size);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== size) fail('bad unicode escape');
        out += String.fromCodePoint(parseInt(hex, 16));
        pos += size;
      } else fail(`bad escape \\${esc}`);
    }
  }
  function literalString() {
    pos++;
    if (text.startsWith("''", pos)) fail('multi-line strings are not supported');
    const end = text.indexOf("'", pos);
    const newline = text.indexOf('\n', pos);
    if (end < 0 || (newline >= 0 && newline < end)) fail('unterminated string');
    const out = text.slice(pos, end);
    pos = end + 1;
    return out;
  }
  function key() {
    const parts = [];
    for (;;) {
      skipSpace(false);
      const ch = peek();
      if (ch === '"') parts.push(basicString());
      else if (ch === "'") parts.push(literalString());
      else {
        const match = /^[A-Za-z0-9_-]+/.exec(text.slice(pos, pos + 256));
        if (!match) fail('expected a key');
        parts.push(match[0]);
        pos += match[0].length;
      }
      skipSpace(false);
      if (peek() !== '.') return parts;
      pos++;
    }
  }
  function value() {
    skipSpace(false);
    const ch = peek();
    if (ch === '"') return basicString();
    if (ch === "'") return literalString();
    if (ch === '[') {
      pos++;
      const items = [];
      for (;;) {
        skipSpace(true);
        if (peek() === ']') { pos++; return items; }
        items.push(value());
        skipSpace(true);
        if (peek() === ',') { pos++; continue; }
        if (peek() === ']') { pos++; return items; }
        fail('expected , or ] in an array');
      }
    }
    if (ch === '{') {
      pos++;
      const table = {};
      skipSpace(false);
      if (peek() === '}') { pos++; return table; }
      for (;;) {
        const parts = key();
        if (peek() !== '=') fail('expected = in an inline table');
        pos++;
        assign(table, parts, value());
        skipSpace(false);
        if (peek() === ',') { pos++; continue; }
        if (peek() === '}') { pos++; return table; }
        fail('expected , or } in an inline table');
      }
    }
    const match = /^[^\s,\]}#]+/.exec(text.slice(pos, pos + 128));
    if (!match) fail('expected a value');
    const word = match[0];
    pos += word.length;
    if (word === 'true') return true;
    if (word === 'false') return false;
    const clean = word.replace(/_/g, '');
    if (/^[+-]?\d+$/.test(clean)) return Number(clean);
    if (/^[+-]?(\d+\.\d+([eE][+-]?\d+)?|\d+[eE][+-]?\d+)$/.test(clean)) return Number(clean);
    if (/^[+-]?(inf|nan)$/.test(clean)) return clean.includes('nan') ? NaN : (clean.startsWith('-') ? -Infinity : Infinity);
    return fail(`unsupported value ${word} (dates and bare words are not read by the Node client)`);
  }
  function assign(table, parts, val) {
    let target = table;
    for (const part of parts.slice(0, -1)) {
      if (!Object.prototype.hasOwnProperty.call(target, part)) target[part] = {};
      target = target[part];
      if (typeof target !== 'object' || target === null || Array.isArray(target)) fail(`${part} is not a table`);
    }
    const last = parts[parts.length - 1];
    if (Object.prototype.hasOwnProperty.call(target, last)) fail(`duplicate key ${last}`);
    target[last] = val;
  }

  while (pos < text.length) {
    skipSpace(true);
    if (pos >= text.length) break;
    if (peek() === '[') {
      if (text[pos + 1] === '[') fail('arrays of tables are not supported');
      pos++;
      const parts = key();
      if (peek() !== ']') fail('expected ] after a table name');
      pos++;
      current = root;
      for (const part of parts) {
        if (!Object.prototype.hasOwnProperty.call(current, part)) current[part] = {};
        current = current[part];
        if (typeof current !== 'object' || Array.isArray(current)) fail(`${part} is not a table`);
      }
    } else {
      const parts = key();
      if (peek() !== '=') fail('expected =');
      pos++;
      assign(current, parts, value());
    }
    skipSpace(false);
    if (pos < text.length && peek() !== '\n') fail('expected the end of the line');
  }
  return root;
}

module.exports = { parse, TomlError };
