#!/usr/bin/env node
'use strict';
// npx telly-autoinst ...: see lib/cli.js.
require('../lib/cli').main().then((code) => { process.exitCode = code; });
