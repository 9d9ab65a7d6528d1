'use strict';
// Call counts: one cell per (project, key), incremented in place by the wrappers. A JavaScript
// thread never runs two of our increments at once, and each worker thread has its own heap and
// so its own cells, which it reports itself when it exits.

const cells = new Map(); // project id -> Map(key -> {n})

/** The counter cell for one key of one project, created once and kept by the wrapper. */
function cell(projectId, key) {
  let byKey = cells.get(projectId);
  if (!byKey) cells.set(projectId, (byKey = new Map()));
  let found = byKey.get(key);
  if (!found) byKey.set(key, (found = { n: 0 }));
  return found;
}

/** Project ids with at least one counted call since the last take. */
function pendingProjects() {
  const out = [];
  for (const [projectId, byKey] of cells) {
    for (const c of byKey.values()) {
      if (c.n > 0) {
        out.push(projectId);
        break;
      }
    }
  }
  return out;
}

/** The counts of one project since the last take ({key: n}), and reset them to zero. */
function take(projectId) {
  const stats = {};
  const byKey = cells.get(projectId);
  if (!byKey) return stats;
  for (const [key, c] of byKey) {
    if (c.n > 0) {
      stats[key] = c.n;
      c.n = 0;
    }
  }
  return stats;
}

/** Put counts back after a failed periodic send, so they ride along with the next report. */
function giveBack(projectId, stats) {
  for (const [key, n] of Object.entries(stats)) cell(projectId, key).n += n;
}

module.exports = { cell, pendingProjects, take, giveBack };
