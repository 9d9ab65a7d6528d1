'use strict';
// Preloaded into every test process (package.json's test script): HOME in a temporary directory,
// with the XDG directories under it, so nothing a test does in its own process (a salt, a consent
// list, the spool, a cache) touches the real home of whoever runs `npm test`. Tests that need a
// home of their own still make one (support.tmpdir) and pass it to what they run.

const fs = require('fs');
const os = require('os');
const path = require('path');

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'telly-node-test-home-'));
process.env.HOME = home;
for (const name of ['XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME']) delete process.env[name];
process.on('exit', () => {
  try {
    fs.rmSync(home, { recursive: true, force: true });
  } catch (_) { /* a detached sender may still be writing there */ }
});
