'use strict';
// When reports leave: at exit (also in each worker thread, which reports its own counts), on
// SIGTERM, SIGINT and SIGHUP, and periodically with TELLY_TIMER.
//
// Signals: a listener on a Node signal replaces its default action (termination), so ours must
// give it back. It is prepended, and on its signal it first removes itself, then flushes; if no
// other listener is left, the default action is restored by re-sending the signal, so the
// process dies of it exactly as without us (status 128 + n). If the host listens too, its
// listeners run next and see the list as it would be without us (libraries such as signal-exit
// count listeners to decide whether to re-raise).

const { isMainThread } = require('worker_threads');

const SIGNALS = process.platform === 'win32' ? ['SIGINT', 'SIGTERM'] : ['SIGTERM', 'SIGINT', 'SIGHUP'];
let installed = false;

function install(processSettings, flush) {
  if (installed) return;
  installed = true;
  process.on('exit', () => flush('exit'));
  if (processSettings.exit_signal_only) return; // the documented meaning: report only at normal exit
  if (isMainThread) {
    for (const signal of SIGNALS) {
      const onSignal = () => {
        process.removeListener(signal, onSignal);
        try {
          flush('signal', require('os').constants.signals[signal] || null);
        } finally {
          if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
        }
      };
      process.prependListener(signal, onSignal);
    }
  }
  if (processSettings.timer) {
    setInterval(() => flush('timer'), processSettings.timer_interval_sec * 1000).unref();
  }
}

module.exports = { install };
