'use strict';
// A JSON Schema (draft 2020-12) validator for the subset that config/*.schema.json use, so the
// package.json "telly" field is checked against the very schema the Python side publishes, with no
// dependency. Supported: type, enum, const, required, properties, additionalProperties,
// propertyNames, minProperties, maxProperties, items, minLength, maxLength, pattern, minimum,
// maximum, oneOf, dependentSchemas, format "uri" (absolute http(s) URL) and "date-time" (RFC 3339). Anything else
// in a schema is a programming error and throws, so a schema change cannot be silently ignored.

const fs = require('fs');
const path = require('path');

const KNOWN = new Set(['$schema', '$id', 'title', 'description', 'default', 'type', 'enum', 'const', 'required',
  'properties', 'additionalProperties', 'propertyNames', 'minProperties', 'maxProperties', 'items', 'minLength',
  'maxLength', 'pattern', 'minimum', 'maximum', 'oneOf', 'format', 'dependentSchemas']);

function typeOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function matchesType(value, type) {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

function equal(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function length(text) {
  return [...text].length; // code points, as JSON Schema counts
}

const FORMATS = {
  uri(value) {
    try {
      return /^https?:$/.test(new URL(value).protocol);
    } catch (_) {
      return false;
    }
  },
  'date-time': (value) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(value),
};

/** The first violation of ``schema`` by ``value`` as "where: what", or null when it is valid. */
function validate(schema, value, where = '') {
  for (const key of Object.keys(schema)) {
    if (!KNOWN.has(key)) throw new Error(`schema keyword ${key} is not supported by lib/schema.js`);
  }
  const at = where || '(top level)';
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(value, t))) return `${at}: expected ${types.join(' or ')}, got ${typeOf(value)}`;
  }
  if (schema.const !== undefined && !equal(schema.const, value)) return `${at}: must be ${JSON.stringify(schema.const)}`;
  if (schema.enum && !schema.enum.some((e) => equal(e, value))) {
    return `${at}: expected one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}, got ${JSON.stringify(value)}`;
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && length(value) < schema.minLength) return `${at}: shorter than ${schema.minLength}`;
    if (schema.maxLength !== undefined && length(value) > schema.maxLength) return `${at}: longer than ${schema.maxLength}`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
      return `${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`;
    }
    if (schema.format !== undefined) {
      const check = FORMATS[schema.format];
      if (!check) throw new Error(`schema format ${schema.format} is not supported`);
      if (!check(value)) return `${at}: ${JSON.stringify(value)} is not a valid ${schema.format}`;
    }
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) return `${at}: less than ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `${at}: more than ${schema.maximum}`;
  }
  if (Array.isArray(value) && schema.items) {
    for (let i = 0; i < value.length; i++) {
      const error = validate(schema.items, value[i], `${where}[${i}]`);
      if (error) return error;
    }
  }
  if (typeOf(value) === 'object') {
    const keys = Object.keys(value);
    for (const name of schema.required || []) {
      if (!Object.prototype.hasOwnProperty.call(value, name)) return `${at}: missing required key ${JSON.stringify(name)}`;
    }
    if (schema.minProperties !== undefined && keys.length < schema.minProperties) {
      return `${at}: needs at least ${schema.minProperties} key(s)`;
    }
    if (schema.maxProperties !== undefined && keys.length > schema.maxProperties) {
      return `${at}: more than ${schema.maxProperties} keys`;
    }
    const props = schema.properties || {};
    for (const name of keys) {
      const sub = where ? `${where}.${name}` : name;
      if (schema.propertyNames) {
        const error = validate(schema.propertyNames, name, `${sub} (name)`);
        if (error) return error;
      }
      if (Object.prototype.hasOwnProperty.call(props, name)) {
        const error = validate(props[name], value[name], sub);
        if (error) return error;
      } else if (schema.additionalProperties === false) {
        return `${at}: unknown key ${JSON.stringify(name)}`;
      } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        const error = validate(schema.additionalProperties, value[name], sub);
        if (error) return error;
      }
    }
    for (const [name, dependent] of Object.entries(schema.dependentSchemas || {})) {
      if (!Object.prototype.hasOwnProperty.call(value, name)) continue;
      const error = validate(dependent, value, where);
      if (error) return error;
    }
  }
  if (schema.oneOf) {
    const errors = schema.oneOf.map((s) => validate(s, value, where));
    const passing = errors.filter((e) => e === null).length;
    if (passing !== 1) return passing ? `${at}: matches more than one alternative` : errors.find(Boolean);
  }
  return null;
}

const cache = new Map();

/**
 * A schema published in config/. `npm pack` copies config/*.schema.json into schemas/ for the
 * package and removes the copy afterwards (prepack/postpack), so a checkout reads config/ itself.
 */
function file(name) {
  const shipped = path.join(__dirname, '..', 'schemas', name);
  return fs.existsSync(shipped) ? shipped : path.join(__dirname, '..', '..', 'config', name);
}

function load(name) {
  if (!cache.has(name)) cache.set(name, JSON.parse(fs.readFileSync(file(name), 'utf8')));
  return cache.get(name);
}

module.exports = { validate, load, file };
