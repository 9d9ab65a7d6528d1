'use strict';
// Settings: the same layering as the Python client (package field < user config file <
// environment), and the user config file the Python client reads, read by the Node client too.

const test = require('node:test');
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const settings = require('../lib/settings');
const { tmpdir, runPython, cleanEnv } = require('./support');

const CONFIG = `# shared with the Python client
region = "eu"
timer = true
force_packages = ["a", "b"]

[project."p-1"]
level2 = false
endpoints = { us = "https://us.example", eu = "https://eu.example" }
`;

test('the user config file layers like the Python client\'s, and the environment wins', () => {
  const home = tmpdir('home');
  const file = path.join(home, '.config', 'telly_autoinst', 'config.toml');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, CONFIG);
  const env = cleanEnv(home, { TELLY_TIMER_INTERVAL_SEC: '60' });
  const userConfig = settings.readUserConfig(env);
  const proc = settings.processSettings(env, userConfig);
  const project = settings.projectSettings({ project_id: 'p-1', region: 'us', level2: true }, 'pkg', { env, userConfig });
  const expected = JSON.parse(runPython(`
import json
from telly_autoinst.settings import process_settings, project_settings
p = process_settings()
j = project_settings({"project_id": "p-1", "region": "us", "level2": True}, "pkg", default_packages=["pkg"])
print(json.dumps({"timer": p.timer, "interval": p.timer_interval_sec, "force": list(p.force_packages),
                  "region": j.region, "level2": j.level2, "url": j.collector_url(p)}))`, { env }));
  assert.deepStrictEqual({ timer: proc.timer, interval: proc.timer_interval_sec, force: proc.force_packages,
    region: project.region, level2: project.level2, url: require('../lib/discovery').collectorUrl(project, proc) }, expected);
  assert.deepStrictEqual(expected, { timer: true, interval: 60, force: ['a', 'b'], region: 'eu', level2: false, url: 'https://eu.example' });
});

test('bad values are refused with the setting\'s name', () => {
  assert.throws(() => settings.processSettings({ TELLY_HTTP_TIMEOUT: '-1' }, {}), /TELLY_HTTP_TIMEOUT: expected a positive number/);
  assert.throws(() => settings.processSettings({ TELLY_STORAGE_TYPE: 'pigeon' }, {}), /expected one of http_async, http, file/);
  assert.throws(() => settings.processSettings({}, { show_me: 'maybe' }), /show_me: expected true or false/);
  assert.throws(() => settings.projectSettings({ project_id: 'p', show_me: true }, 'pkg', { env: {}, userConfig: {} }),
    /unknown key "show_me"/);
});
