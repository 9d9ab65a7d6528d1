'use strict';
// The public API: flush() for programs whose exit path skips 'exit' (process.abort, a kill -9
// from a supervisor); activation itself needs no code (see register.js).

/** Send (or hand off) the counts now; never throws; returns how many reports were handed over. */
function flush() {
  try {
    return require('./pipeline').flush('manual');
  } catch (_) {
    return 0;
  }
}

module.exports = { flush };
