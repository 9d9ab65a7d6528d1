'use strict';
// node --require telly-autoinst/register app.js (or in NODE_OPTIONS): counts opted-in packages.
require('./lib/activate').activate();
