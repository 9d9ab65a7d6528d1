// node --import telly-autoinst/register app.mjs (or in NODE_OPTIONS): the same activation as --require.
import './register.js';
