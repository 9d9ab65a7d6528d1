'use strict';
// Call counts: one cell per (package, key), incremented in place by the wrappers. A JavaScript
// thread never runs two of our increments at once, and each worker thread has its own heap and
// so its own cells, which it reports itself when it exits.
//
// Counts are kept per package (project id, name and version), not per project id: two packages
// may share a project id, and each is reported under its own name and version with only its own
// counts. Two copies of one package version (nested node_modules) are one package.

const cells = new Map(); // report key -> {project, byKey: Map(key -> {n})}

/** The key a package's counts are kept and reported under. */
function reportKey(project) {
  return JSON.stringify([project.project_id, project.name || null, project.version || null]);
}

/** The counter cell for one key of one package's project settings, created once and kept by the wrapper. */
function cell(project, key) {
  const at = reportKey(project);
  let entry = cells.get(at);
  if (!entry) cells.set(at, (entry = { project, byKey: new Map() }));
  let found = entry.byKey.get(key);
  if (!found) entry.byKey.set(key, (found = { n: 0 }));
  return found;
}

/** The project settings of each package with at least one counted call since the last take. */
function pending() {
  const out = [];
  for (const { project, byKey } of cells.values()) {
    for (const c of byKey.values()) {
      if (c.n > 0) {
        out.push(project);
        break;
      }
    }
  }
  return out;
}

/** The counts of one package since the last take ({key: n}), and reset them to zero. */
function take(project) {
  const stats = {};
  const entry = cells.get(reportKey(project));
  if (!entry) return stats;
  for (const [key, c] of entry.byKey) {
    if (c.n > 0) {
      stats[key] = c.n;
      c.n = 0;
    }
  }
  return stats;
}

/** Put counts back after a failed periodic send, so they ride along with the next report. */
function giveBack(project, stats) {
  for (const [key, n] of Object.entries(stats)) cell(project, key).n += n;
}

module.exports = { reportKey, cell, pending, take, giveBack };
