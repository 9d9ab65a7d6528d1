'use strict';
// Sends report bytes (file, synchronous HTTP, or hand-off to the spool and a detached sender) and
// records every loss with its reason, as telly_autoinst/transport.py does. The exit path never
// waits on the network: "http" posts from a child process bounded by the request timeout.

const fs = require('fs');
const path = require('path');
const spool = require('./spool');
const { appendLine, secureDir, writeAtomic } = require('./_files');
const { SPOOL_LOSS_LOG_MAX_BYTES: LOSS_LOG_MAX, RETRY_SENDER_INTERVAL_SEC } = require('./_contract');

function outcome(delivered, { retry = false, reason = 'ok', retryAfter = null } = {}) {
  return { delivered, retry, reason, retryAfter };
}

/** Remember that a report was lost and why: in the spool's losses.log, and on stderr with TELLY_DEBUG. */
function recordLoss(reason, projectId = null, spoolDir = null, debug = false) {
  if (debug) {
    try {
      fs.writeSync(2, `telly-autoinst: report for ${projectId} lost: ${reason}\n`);
    } catch (_) { /* stderr closed */ }
  }
  if (spoolDir) {
    try {
      if (secureDir(spoolDir) !== null) return; // another user's directory: the in-memory record stays
      // One line per loss, whatever a spooled header held: no newline or control character of a
      // project id read back from a spool entry reaches the file.
      const field = (value) => String(value).replace(/[^\x21-\x7e]/g, '?').slice(0, 200);
      appendLine(path.join(spoolDir, spool.LOSS_LOG), `${Math.floor(Date.now() / 1000)} ${field(reason)} ${field(projectId)}\n`,
        LOSS_LOG_MAX);
    } catch (_) { /* unwritable: the in-memory record stays */ }
  }
}

function reportsUrl(base) {
  return `${base.replace(/\/+$/, '')}/api/v1/reports`;
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or null. */
function parseRetryAfter(value) {
  if (!value) return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

/** The proxy URL for ``target`` from HTTPS_PROXY / HTTP_PROXY (either case), unless NO_PROXY matches. */
function proxyFor(target, env = process.env) {
  const noProxy = (env.NO_PROXY || env.no_proxy || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const host = target.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  for (const entry of noProxy) {
    if (entry === '*') return null;
    const bare = entry.replace(/^\*?\./, '').replace(/:\d+$/, '');
    if (host === bare || host.endsWith(`.${bare}`)) return null;
  }
  const value = target.protocol === 'https:' ? env.HTTPS_PROXY || env.https_proxy : env.HTTP_PROXY || env.http_proxy;
  if (!value) return null;
  try {
    return new URL(value.includes('://') ? value : `http://${value}`);
  } catch (_) {
    return null;
  }
}

/**
 * One HTTP(S) request through ``proxy`` or directly; resolves to {status, headers}. ``timeoutMs``
 * bounds the whole exchange (connection, upload, status line and headers), not each read, so a
 * server that trickles its headers byte by byte cannot stretch it. The body is never read: once
 * the headers are in, the connection is closed, so the body's size and pace do not matter.
 */
function request(target, body, headers, timeoutMs, proxy) {
  const http = require('http');
  const https = require('https');
  return new Promise((resolve, reject) => {
    const open = []; // requests to destroy when the exchange ends
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const req of open) req.destroy();
      fn(value);
    };
    const fail = (err) => settle(reject, err);
    const timer = setTimeout(() => fail(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
    const finish = (options, mod) => {
      const req = mod.request(options, (res) => {
        res.on('error', () => {}); // the destroy below aborts it: expected, not a failure
        settle(resolve, { status: res.statusCode, headers: res.headers });
      });
      open.push(req);
      req.on('error', fail);
      req.end(body);
    };
    const base = { method: 'POST', headers, agent: false };
    if (!proxy) {
      finish(Object.assign(base, { hostname: target.hostname, port: target.port, path: target.pathname + target.search }),
        target.protocol === 'https:' ? https : http);
    } else if (target.protocol === 'http:') {
      finish(Object.assign(base, { hostname: proxy.hostname, port: proxy.port || 80, path: target.href }), http);
    } else {
      const port = target.port || 443;
      const connect = http.request({ hostname: proxy.hostname, port: proxy.port || 80, method: 'CONNECT',
        path: `${target.hostname}:${port}`, agent: false });
      open.push(connect);
      connect.on('connect', (res, socket) => {
        if (res.statusCode !== 200) {
          socket.destroy();
          fail(Object.assign(new Error(`proxy said ${res.statusCode}`), { code: 'EPROXY' }));
          return;
        }
        open.push({ destroy: () => socket.destroy() });
        finish(Object.assign(base, { hostname: target.hostname, port, path: target.pathname + target.search,
          socket, servername: target.hostname }), https);
      });
      connect.on('error', fail);
      connect.end();
    }
  });
}

/**
 * POST gzip'd report bytes once; resolves to an outcome, never rejects. ``deadline`` (seconds
 * since the epoch) clips the timeout, so a caller with a wall-clock budget never starts what it
 * cannot finish.
 */
async function post(url, body, timeoutSec, deadline = null) {
  if (deadline !== null) {
    const remaining = deadline - Date.now() / 1000;
    if (remaining <= 0) return outcome(false, { retry: true, reason: 'deadline' });
    timeoutSec = Math.min(timeoutSec, remaining);
  }
  let target;
  try {
    target = new URL(url);
  } catch (_) {
    return outcome(false, { reason: 'bad-url' });
  }
  const data = require('zlib').gzipSync(body, { level: 6 }); // in the sender only, never on the exit path
  const headers = { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip', 'User-Agent': 'telly-autoinst-node',
    'Accept-Encoding': 'identity', 'Content-Length': data.length };
  let response;
  try {
    response = await request(target, data, headers, Math.max(1, Math.round(timeoutSec * 1000)), proxyFor(target));
  } catch (err) {
    if (err.code === 'ETIMEDOUT') return outcome(false, { retry: true, reason: 'timeout' });
    if (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EPROXY']
      .includes(err.code)) return outcome(false, { retry: true, reason: 'connection-error' });
    return outcome(false, { reason: `request-error:${err.code || err.name}` });
  }
  const { status } = response;
  if (status >= 200 && status < 300) return outcome(true);
  if (status === 408 || status === 425 || status === 429 || status >= 500) {
    return outcome(false, { retry: true, reason: `http-${status}`, retryAfter: parseRetryAfter(response.headers['retry-after']) });
  }
  // Other 4xx: the collector will never accept this report; retrying only wastes the user's network.
  return outcome(false, { reason: `http-${status}` });
}

/** Writes each report as telly_<report_id>.json into a directory (TELLY_LOCAL_STORAGE_PATH). */
function fileTransport(directory) {
  return {
    deliver(url, projectId, body, reportId) {
      if (!directory) return outcome(false, { reason: 'no-local-storage-path' });
      const file = path.join(directory, `telly_${reportId}.json`);
      try {
        fs.mkdirSync(directory, { recursive: true, mode: 0o700 });
        writeAtomic(file, body);
      } catch (err) {
        return outcome(false, { reason: `file-error:${err.code || err.name}` });
      }
      return outcome(true);
    },
  };
}

/**
 * Start a detached sender for ``spoolDir`` unless one took it less than RETRY_SENDER_INTERVAL_SEC
 * ago: a program run hundreds of times a day thus starts at most one sender a minute, and what it
 * queued leaves with the sender still running or at the first exit after the interval
 * (telly_autoinst/pipeline.py's rule). Every sender enforces the caps as it takes the spool, so
 * the host leaves them to the one it starts, the one draining, or the next one: listing and
 * stat'ing a full spool (500 entries while a collector is down) at every exit would be the host's
 * time.
 */
function startSenderIfDue(spoolDir, timeout) {
  if (!spool.senderRanWithin(spoolDir, RETRY_SENDER_INTERVAL_SEC)) require('./sender').spawnDetached(spoolDir, timeout);
}

/**
 * The default exit path: queue one project's ``pipeline.capture`` data for the detached sender,
 * which builds the report from it, and start one when due; never waits on the network.
 */
function handOff(spoolDir, url, projectId, captured, optin = false, timeout = 3) {
  if (!url) return outcome(false, { reason: 'no-endpoint' });
  if (!spoolDir) return outcome(false, { reason: 'no-spool-dir' });
  try {
    spool.enqueueCounts(spoolDir, reportsUrl(url), projectId, captured, optin);
  } catch (err) {
    return outcome(false, { reason: `spool-error:${err.code || err.name}` });
  }
  startSenderIfDue(spoolDir, timeout);
  return outcome(true, { reason: 'spooled' });
}

/** Hands a built report to the spool (and starts a sender when due); never waits on the network. */
function spoolTransport(spoolDir, { spawn = true, timeout = 3 } = {}) {
  return {
    deliver(url, projectId, body, reportId, optin = false) {
      if (!url) return outcome(false, { reason: 'no-endpoint' });
      if (!spoolDir) return outcome(false, { reason: 'no-spool-dir' });
      try {
        spool.enqueue(spoolDir, reportsUrl(url), projectId, body, reportId, optin);
      } catch (err) {
        return outcome(false, { reason: `spool-error:${err.code || err.name}` });
      }
      if (spawn) startSenderIfDue(spoolDir, timeout);
      return outcome(true, { reason: spawn ? 'spooled' : 'deferred' });
    },
  };
}

/**
 * Posts once, synchronously, from a child process bounded by the timeout (the exit path of a Node
 * program cannot await a socket); a retryable failure goes to the spool for a later sender.
 */
function httpTransport(timeout, spoolDir) {
  return {
    deliver(url, projectId, body, reportId, optin = false) {
      if (!url) return outcome(false, { reason: 'no-endpoint' });
      const result = require('./sender').postSync(reportsUrl(url), body, timeout);
      if (result.delivered || !result.retry || !spoolDir) return result;
      return spoolTransport(spoolDir, { spawn: false }).deliver(url, projectId, body, reportId, optin);
    },
  };
}

/** The transport for TELLY_STORAGE_TYPE: http_async (default), http or file. */
function makeTransport(processSettings) {
  const spoolDir = spool.defaultDir(processSettings.spool_dir);
  if (processSettings.storage_type === 'file') return fileTransport(processSettings.local_storage_path);
  if (processSettings.storage_type === 'http') return httpTransport(processSettings.http_timeout, spoolDir);
  return spoolTransport(spoolDir, { timeout: processSettings.http_timeout });
}

module.exports = { post, recordLoss, reportsUrl, makeTransport, handOff, proxyFor, parseRetryAfter, outcome };
