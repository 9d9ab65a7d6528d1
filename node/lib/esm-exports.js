'use strict';
// The export names of an ES module, read from its source without running it, for the loader hook
// that builds the counting facade (ESM exports are static, so the facade must name them).
//
// A small tokenizer (strings, templates, comments, regular expressions, bracket depth) finds the
// top-level `export` statements. Whatever it misses still reaches importers, uncounted, through
// the facade's `export *`; a module it cannot read is left alone. Kinds: function, class, const,
// let, var (mutable: passed through live, never snapshotted), namespace, unknown (re-exports).

const REGEX_AFTER = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw',
  'case', 'do', 'else', 'yield', 'await', 'extends']);
const ID = /[\p{ID_Continue}$\u200c\u200d]/u;
const ID_START = /[\p{ID_Start}$_\\]/u;

class LexError extends Error {}

/** Tokens of ``source``: {t: 'id'|'num'|'str'|'punct'|'regex'|'tmpl', v, depth, nl}. */
function tokenize(source) {
  const tokens = [];
  const stack = []; // '{', '(', '[' or '`' (inside a template's ${ })
  let i = source.startsWith('#!') ? source.indexOf('\n') : 0;
  if (i < 0) return tokens;
  let nl = false;
  const n = source.length;
  const push = (t, v) => {
    tokens.push({ t, v, depth: stack.filter((s) => s !== '`').length, nl });
    nl = false;
  };
  const prevAllowsRegex = () => {
    const prev = tokens[tokens.length - 1];
    if (!prev) return true;
    if (prev.t === 'num' || prev.t === 'str' || prev.t === 'regex' || prev.t === 'tmpl') return false;
    if (prev.t === 'id') return REGEX_AFTER.has(prev.v);
    return !(prev.v === ')' || prev.v === ']' || prev.v === '}');
  };
  function template() {
    // i is just past a backtick or a closing } of ${ }; read to the closing backtick or the next ${
    for (;;) {
      if (i >= n) throw new LexError('unterminated template');
      const ch = source[i];
      if (ch === '\\') i += 2;
      else if (ch === '`') { i++; push('tmpl', '`'); return; }
      else if (ch === '$' && source[i + 1] === '{') { i += 2; stack.push('`'); return; }
      else i++;
    }
  }
  while (i < n) {
    const ch = source[i];
    if (ch === '\n' || ch === '\u2028' || ch === '\u2029') { nl = true; i++; continue; }
    if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\f' || ch === '\v' || ch === '\ufeff' || ch === '\u00a0') { i++; continue; }
    if (ch === '/' && source[i + 1] === '/') {
      while (i < n && source[i] !== '\n') i++;
      continue;
    }
    if (ch === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      if (end < 0) throw new LexError('unterminated comment');
      if (source.slice(i, end).includes('\n')) nl = true;
      i = end + 2;
      continue;
    }
    if (ch === '"' || ch === "'") {
      let j = i + 1;
      while (j < n && source[j] !== ch) {
        if (source[j] === '\\') j++;
        else if (source[j] === '\n') throw new LexError('unterminated string');
        j++;
      }
      if (j >= n) throw new LexError('unterminated string');
      push('str', source.slice(i + 1, j));
      i = j + 1;
      continue;
    }
    if (ch === '`') { i++; template(); continue; }
    if (ch === '/' && prevAllowsRegex()) {
      let j = i + 1;
      let inClass = false;
      while (j < n) {
        const c = source[j];
        if (c === '\\') j += 2;
        else if (c === '\n') throw new LexError('unterminated regular expression');
        else if (c === '[') { inClass = true; j++; }
        else if (c === ']') { inClass = false; j++; }
        else if (c === '/' && !inClass) break;
        else j++;
      }
      j++;
      while (j < n && ID.test(source[j])) j++;
      push('regex', source.slice(i, j));
      i = j;
      continue;
    }
    if (ID_START.test(ch) || (ch >= '\ud800' && ch <= '\udbff')) {
      let j = i;
      while (j < n && (ID.test(source[j]) || source[j] === '\\' || (source[j] >= '\ud800' && source[j] <= '\udfff'))) j++;
      if (j === i) j++;
      push('id', source.slice(i, j));
      i = j;
      continue;
    }
    if (ch >= '0' && ch <= '9') {
      let j = i + 1;
      while (j < n && /[0-9a-zA-Z_.]/.test(source[j])) j++;
      push('num', source.slice(i, j));
      i = j;
      continue;
    }
    if (ch === '.' && /[0-9]/.test(source[i + 1] || '')) {
      let j = i + 1;
      while (j < n && /[0-9a-zA-Z_]/.test(source[j])) j++;
      push('num', source.slice(i, j));
      i = j;
      continue;
    }
    if (ch === '{' || ch === '(' || ch === '[') {
      push('punct', ch);
      stack.push(ch);
      i++;
      continue;
    }
    if (ch === '}' || ch === ')' || ch === ']') {
      const open = stack.pop();
      if (open === '`' && ch === '}') { i++; template(); continue; }
      if (open === undefined || '{(['.indexOf(open) !== '})]'.indexOf(ch)) throw new LexError(`unbalanced ${ch}`);
      push('punct', ch);
      i++;
      continue;
    }
    // Other punctuators, one character at a time except the spread and arrow operators.
    if (source.startsWith('...', i)) { push('punct', '...'); i += 3; continue; }
    if (source.startsWith('=>', i)) { push('punct', '=>'); i += 2; continue; }
    push('punct', ch);
    i++;
  }
  if (stack.length) throw new LexError('unbalanced brackets');
  return tokens;
}

/** Names bound by a declaration pattern starting at tokens[k]; returns [names, next index]. */
function pattern(tokens, k, names) {
  const tok = tokens[k];
  if (!tok) throw new LexError('truncated declaration');
  if (tok.t === 'id') {
    names.push(tok.v);
    return k + 1;
  }
  if (tok.v !== '{' && tok.v !== '[') throw new LexError('unexpected token in a declaration');
  const close = tok.v === '{' ? '}' : ']';
  const depth = tok.depth;
  k++;
  while (tokens[k] && !(tokens[k].v === close && tokens[k].depth === depth)) {
    const t = tokens[k];
    if (t.v === ',') { k++; continue; }
    if (t.v === '...') { k = pattern(tokens, k + 1, names); continue; }
    if (close === '}') {
      // key, key: pattern, [computed]: pattern, "str": pattern, each with an optional default
      let keyTok = t;
      if (t.v === '[') {
        k = skipBalanced(tokens, k);
        keyTok = null;
      } else k++;
      if (tokens[k] && tokens[k].v === ':') k = pattern(tokens, k + 1, names);
      else if (keyTok && keyTok.t === 'id') names.push(keyTok.v);
    } else {
      k = pattern(tokens, k, names);
    }
    if (tokens[k] && tokens[k].v === '=') k = skipExpression(tokens, k + 1, depth + 1, [',', close]);
  }
  return k + 1;
}

/** Index just past the bracket closing the one at tokens[k]. */
function skipBalanced(tokens, k) {
  const depth = tokens[k].depth;
  k++;
  while (tokens[k] && !(tokens[k].depth === depth && '})]'.includes(tokens[k].v) && tokens[k].t === 'punct')) k++;
  return k + 1;
}

const ENDS_EXPRESSION = new Set(['id', 'num', 'str', 'regex', 'tmpl']);

/** Skip an initializer: stop at a stop token at ``depth``, or where ASI would end the statement. */
function skipExpression(tokens, k, depth, stops) {
  for (; tokens[k]; k++) {
    const t = tokens[k];
    if (t.depth < depth) return k;
    if (t.depth === depth && t.t === 'punct' && stops.includes(t.v)) return k;
    if (t.depth === depth && t.nl && k > 0 && t.t === 'id') {
      const prev = tokens[k - 1];
      if (ENDS_EXPRESSION.has(prev.t) || (prev.t === 'punct' && (prev.v === ')' || prev.v === ']' || prev.v === '}'))) {
        if (!['instanceof', 'in', 'of', 'as'].includes(t.v)) return k;
      }
    }
  }
  return k;
}

/**
 * {names: Map(exported name -> kind), stars: [specifier]} of an ES module's source.
 * Throws LexError when the source is beyond this reader; the caller then leaves the module alone.
 */
function exportsOf(source) {
  const tokens = tokenize(source);
  const locals = new Map();
  const names = new Map();
  const stars = [];
  const top = (k) => tokens[k] && tokens[k].depth === 0;
  const isDot = (k) => k > 0 && tokens[k - 1].t === 'punct' && (tokens[k - 1].v === '.' || tokens[k - 1].v === '?');
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k];
    if (!top(k) || t.t !== 'id' || isDot(k)) continue;
    if (t.v === 'function' || t.v === 'class') {
      let j = k + 1;
      if (tokens[j] && tokens[j].v === '*') j++;
      if (tokens[j] && tokens[j].t === 'id' && !locals.has(tokens[j].v)) locals.set(tokens[j].v, t.v);
      continue;
    }
    if ((t.v === 'let' || t.v === 'const' || t.v === 'var') && tokens[k + 1] && tokens[k + 1].t === 'id') {
      locals.set(tokens[k + 1].v, t.v);
      continue;
    }
    if (t.v !== 'export') continue;
    const next = tokens[k + 1];
    if (!next) throw new LexError('truncated export');
    if (next.v === 'default') {
      const after = tokens[k + 2];
      const kind = after && (after.v === 'class' ? 'class' : (after.v === 'function' || (after.v === 'async' && tokens[k + 3] && tokens[k + 3].v === 'function')) ? 'function' : 'unknown');
      names.set('default', kind);
    } else if (next.v === 'function' || next.v === 'class' || next.v === 'async') {
      let j = k + 2;
      if (next.v === 'async') j++;
      if (tokens[j] && tokens[j].v === '*') j++;
      if (!tokens[j] || tokens[j].t !== 'id') throw new LexError('export of a nameless declaration');
      names.set(tokens[j].v, next.v === 'class' ? 'class' : 'function');
      locals.set(tokens[j].v, next.v === 'class' ? 'class' : 'function');
    } else if (next.v === 'const' || next.v === 'let' || next.v === 'var') {
      let j = k + 2;
      for (;;) {
        const declared = [];
        j = pattern(tokens, j, declared);
        for (const name of declared) {
          names.set(name, next.v);
          locals.set(name, next.v);
        }
        if (tokens[j] && tokens[j].v === '=') j = skipExpression(tokens, j + 1, 0, [',', ';']);
        if (tokens[j] && tokens[j].v === ',' && tokens[j].depth === 0) {
          j++;
          continue;
        }
        break;
      }
    } else if (next.v === '*') {
      let j = k + 2;
      if (tokens[j] && tokens[j].v === 'as') {
        const alias = tokens[j + 1];
        names.set(alias.v, 'namespace');
        j += 2;
      } else if (tokens[j] && tokens[j].v === 'from' && tokens[j + 1] && tokens[j + 1].t === 'str') {
        stars.push(tokens[j + 1].v);
      } else throw new LexError('unexpected export *');
    } else if (next.v === '{') {
      const clause = [];
      let j = k + 2;
      while (tokens[j] && tokens[j].v !== '}') {
        if (tokens[j].v === ',') { j++; continue; }
        const local = tokens[j];
        let exportedName = local.v;
        j++;
        if (tokens[j] && tokens[j].v === 'as') {
          exportedName = tokens[j + 1].v;
          j += 2;
        }
        clause.push([local.v, exportedName]);
      }
      const from = tokens[j + 1] && tokens[j + 1].v === 'from';
      for (const [local, exportedName] of clause) {
        names.set(exportedName, from ? 'unknown' : (locals.get(local) || 'pending:' + local));
      }
    } else if (next.t === 'id' && (next.v === 'type' || next.v === 'interface')) {
      throw new LexError('TypeScript syntax');
    } else {
      throw new LexError(`unexpected export ${next.v}`);
    }
  }
  // `export { a }` may come before a's declaration: resolve those kinds now that all locals are known.
  for (const [name, kind] of names) {
    if (kind.startsWith('pending:')) names.set(name, locals.get(kind.slice(8)) || 'unknown');
  }
  return { names, stars };
}

module.exports = { exportsOf, tokenize, LexError };
