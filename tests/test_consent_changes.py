"""Each way of changing consent takes effect at the next run, however warm the runs before it left things.

Black-box, in fresh interpreters of a real venv. Each case sets a state up, runs a watched program
twice (so the index, the code cache and any warm state exist and are used), changes consent one
way, and checks that the very next run queues what the new state says for the sender (counted or
not, reported or not); then that a run with ``TELLY_NO_CACHE=1`` decides the same, and so does
the next warm run. The ways: each command (``optout``, ``optin``, ``disable``, ``enable``,
``purge``); a hand edit of each file the verdict reads (the opt-out and opt-in lists,
``~/.telly_disable``, the user config with its ``[project."<id>"]`` tables, the package's
``telly.toml`` and a checkout's ``[tool.telly]``, and on a terminal the notices record), each
created, deleted, re-linked, and replaced by one of the same size and mtime; each environment
variable that matters; and the package's source edited or the package upgraded. The settings
that say where a report goes and what it carries (spool, storage, collector URL, region, engine,
Level II) are changed the same ways.

The venv is this module's own (one per Python): the sample package is installed into its
site-packages for each test, to be edited and upgraded there as pip would, which a shared venv
must not be. Nothing here drives another Python: ``tests/run``'s 3.9 and 3.13 runs run these
cases on those Pythons.
"""

import os
import shutil
from pathlib import Path

import pytest

from tests.support.dists import installed
from tests.support.schema import read_reports
from tests.support.spooled import hold_sender, take_queued

pytestmark = pytest.mark.slow

PROJECT = "consent-project"
# The watched sample: ``consent-pkg`` with the module ``consentpkg``, opted in through its entry
# point and telly.toml; ``forced-pkg`` (``forcedpkg``) did not opt in, so only forcing counts it.
SOURCE = "def add(a):\n    return a + 1\n\n\ndef neg(a):\n    return -a\n"
TELLY_TOML = f'project_id = "{PROJECT}"\n'
PROGRAM = """
import consentpkg, forcedpkg
for name in ("add", "neg", "pos", "mul"):
    function = getattr(consentpkg, name, None)
    if function is not None:
        function(2)
forcedpkg.hello()
"""

ON = {PROJECT: {"consentpkg.add": 1, "consentpkg.neg": 1}}
OFF: dict = {}
FORCED = {"local:forcedpkg": {"forcedpkg.hello": 1}}
ON_AND_FORCED = {**ON, **FORCED}
CI_CONFIG = ("write", "config", "send_from_ci = false\n")
PROJECT_TABLE = f'[project."{PROJECT}"]\n'
# Collectors' URLs (a sender never runs here: nothing is sent to them).
COLLECTOR, US, EU, OTHER = (f"http://127.0.0.1:{port}" for port in (9, 11, 12, 13))
WITH_ENDPOINTS = [("env", "TELLY_HTTP_SERVER", None),
                  ("write", "telly.toml", TELLY_TOML + f'endpoints = {{us = "{US}", eu = "{EU}"}}\n')]


@pytest.fixture(scope="module")
def venv(venvs):
    """A venv of this module's own: each test installs the sample into it, and edits and upgrades it there."""
    return venvs.new()


@pytest.fixture(scope="module")
def site(venv):
    return venv.site_packages


class _Machine:
    """One user's home and the venv's site-packages, changed by steps (see :meth:`apply`), and runs."""

    def __init__(self, venv, site, home, tmp_path):
        self.venv, self.site, self.home, self.tmp = venv, site, home, tmp_path
        self.checkout = tmp_path / "checkout"
        self.out = tmp_path / "out"  # where file storage puts reports, when a case asks for it
        # The same for every run: a variable that changed between runs would be a change of its own.
        # Reports are queued for the sender, as by default; none reaches a collector.
        self.env = {"TELLY_HTTP_SERVER": COLLECTOR}

    def path(self, name):
        return {
            "optout": self.home / ".telly_optout",
            "optin": self.home / ".telly_optin",
            "disable": self.home / ".telly_disable",
            "notices": self.home / ".telly_notices",
            "config": self.home / ".config" / "telly_autoinst" / "config.toml",
            "other-config": self.tmp / "xdg-config" / "telly_autoinst" / "config.toml",
            "telly.toml": self.site / "consentpkg" / "telly.toml",
            "source": self.site / "consentpkg" / "__init__.py",
            "pyproject": self.checkout / "pyproject.toml",
            "dotfile-a": self.tmp / "dotfiles" / "a",
            "dotfile-b": self.tmp / "dotfiles" / "b",
        }[name]

    def run(self, view="stats", tty=False, **env):
        """Run the program; what it reported, by project id: one fact of each report (``view``, see
        :func:`_facts`). No sender runs meanwhile: the spools are read as the host left them.

        On a pseudo-terminal (TTY) the first-run notice may show: then (reported, whether it showed).
        """
        spools = {"spool": self.default_spool(), "other-spool": self.tmp / "other-spool"}
        for directory in spools.values():
            hold_sender(directory)
        if tty:
            stdout, text = self.venv.run_on_tty(PROGRAM, self.home, env={**self.env, **env})
            assert stdout == ""
        else:
            proc = self.venv.run(PROGRAM, self.home, env={**self.env, **env})
            assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
        reports = [_facts(where, entry) for where, directory in spools.items() for entry in take_queued(directory)]
        if self.out.is_dir():
            reports += [_facts("file", report) for report in read_reports(self.out)]
            shutil.rmtree(self.out)
        seen = {}
        for report in reports:
            assert report["project_id"] not in seen, "two reports of one project in one run"
            seen[report["project_id"]] = report[view]
        if tty:
            return seen, f"(project {PROJECT}) collects anonymous usage statistics" in text
        return seen

    def default_spool(self):
        return Path(self.env.get("XDG_CACHE_HOME") or self.home / ".cache") / "telly_autoinst" / "spool"

    def apply(self, steps):
        for step in steps:
            getattr(self, "_" + step[0].replace("-", "_"))(*step[1:])

    # -- steps ---------------------------------------------------------------------------------

    def _command(self, *args):
        """``python -m telly_autoinst ARGS`` in the same environment as the runs."""
        self.venv.run(["-m", "telly_autoinst", *args], self.home, env=self.env, check=True)

    def _env(self, name, value):
        if value is None:
            self.env.pop(name, None)
        else:
            self.env[name] = value

    def _write(self, name, text):
        """An edit: the file gets TEXT, and a later mtime than it had (if it existed)."""
        path = self.path(name)
        before = path.stat().st_mtime_ns if path.exists() else 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{tmp}", str(self.tmp)))
        st = path.stat()
        if st.st_mtime_ns <= before:  # two writes within one tick of the file system's clock
            os.utime(path, ns=(st.st_atime_ns, before + 1_000_000))

    def _delete(self, name):
        self.path(name).unlink()

    def _link(self, name, target):
        """The file becomes a symbolic link (a dotfile manager's) to TARGET, under the test's directory."""
        path = self.path(name)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(self.tmp / target)

    def _same_stat(self, name, text):
        """Replace the file (a new inode) by TEXT of the same size, with the same mtime."""
        path = self.path(name)
        old = path.stat()
        assert len(text.encode()) == old.st_size, "the new text must be as long as the old"
        new = path.with_name(path.name + ".new")
        new.write_text(text)
        os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(new, path)
        st = path.stat()
        assert (st.st_size, st.st_mtime_ns) == (old.st_size, old.st_mtime_ns) and st.st_ino != old.st_ino

    def _same_stat_in_place(self, name, text):
        """Rewrite the file in place (the same inode) to TEXT of the same size, mtime put back: only ctime moves."""
        path = self.path(name)
        old = path.stat()
        assert len(text.encode()) == old.st_size, "the new text must be as long as the old"
        with open(path, "r+b") as handle:
            handle.write(text.encode())
        os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
        st = path.stat()
        assert (st.st_size, st.st_mtime_ns, st.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
        assert st.st_ctime_ns != old.st_ctime_ns

    def _checkout(self, editable, table):
        """Mark the sample as installed from a checkout (pip's direct_url.json) whose pyproject.toml
        has TABLE (None: the checkout has no pyproject.toml yet)."""
        self.checkout.mkdir(exist_ok=True)
        if table is not None:
            project = '[project]\nname = "consent-pkg"\nversion = "1.0"\n\n'
            (self.checkout / "pyproject.toml").write_text(project + table)
        dir_info = '{"editable": true}' if editable else "{}"
        info = next(self.site.glob("consent_pkg-*.dist-info"))
        (info / "direct_url.json").write_text(f'{{"url": "{self.checkout.as_uri()}", "dir_info": {dir_info}}}')

    def _upgrade(self, version, telly_toml, source):
        """What pip does: the old version's files go, the new version's come (telly_toml None: no opt-in)."""
        for info in self.site.glob("consent_pkg-*.dist-info"):
            shutil.rmtree(info)
        shutil.rmtree(self.site / "consentpkg")
        installed(self.site, "consent_pkg", "consentpkg", telly_toml=telly_toml, source=source, version=version,
                  entry_point=telly_toml is not None)

    def _env_path(self, name, relative):
        """Environment variable NAME names RELATIVE, under the test's directory."""
        self.env[name] = str(self.tmp / relative)

    def _config_home(self, name):
        """XDG_CONFIG_HOME points at another directory: the user config is read from there."""
        self.env["XDG_CONFIG_HOME"] = str(self.tmp / name)

    def _home(self, name):
        """HOME moves to another (empty) directory; the cache directory stays where it was."""
        self.env.setdefault("XDG_CACHE_HOME", str(self.home / ".cache"))
        self.home = self.tmp / name
        self.home.mkdir()


def _facts(where, item):
    """What a test may look at in one report: where it went (the default spool, ``other-spool`` or
    ``file`` storage), its project, stats, engine, whether Level II is on and its plain text was
    accepted, and, for a queued one, the collector's URL and whether the project is opt-in."""
    if where == "file":
        return {"where": where, "project_id": item["project_id"], "stats": item["stats"],
                "engine": item["client"]["engine"], "level2": item["level2"] is not None,
                "plaintext_accepted": "level2_plaintext" in item, "url": None, "optin": None}
    captured = item["captured"]
    return {"where": where, "project_id": captured["project_id"], "stats": captured["stats"],
            "engine": captured["engine"], "level2": captured["level2"],
            "plaintext_accepted": captured["plaintext_accepted"], "url": item["url"], "optin": item["optin"]}


@pytest.fixture
def machine(venv, site, home, tmp_path):
    before = set(site.iterdir())
    installed(site, "consent_pkg", "consentpkg", telly_toml=TELLY_TOML, source=SOURCE)
    installed(site, "forced_pkg", "forcedpkg", source="def hello():\n    return 'hi'\n", entry_point=False,
              files=["forcedpkg/__init__.py"])
    try:
        yield _Machine(venv, site, home, tmp_path)
    finally:
        for path in set(site.iterdir()) - before:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


# (id, setup steps, change steps, reported before the change, reported after it[, view])
CASES = [
    # The commands.
    ("command-optout-project-id", [], [("command", "optout", PROJECT)], ON, OFF),
    ("command-optout-distribution", [], [("command", "optout", "consent-pkg")], ON, OFF),
    ("command-optin-in-optin-mode", [("env", "TELLY_OPTIN", "1")], [("command", "optin", PROJECT)], OFF, ON),
    ("command-optin-after-optout", [("command", "optout", PROJECT)], [("command", "optin", "consentpkg")], OFF, ON),
    ("command-disable", [], [("command", "disable")], ON, OFF),
    ("command-enable", [("command", "disable")], [("command", "enable")], OFF, ON),
    ("command-purge-an-optout", [("command", "optout", PROJECT)], [("command", "purge")], OFF, ON),
    ("command-purge-an-optin", [("env", "TELLY_OPTIN", "1"), ("command", "optin", PROJECT)], [("command", "purge")],
     ON, OFF),
    # ~/.telly_optout by hand.
    ("optout-created", [], [("write", "optout", f"{PROJECT}\n")], ON, OFF),
    ("optout-edited", [("write", "optout", "other-project\n")], [("write", "optout", f"other-project\n{PROJECT}\n")],
     ON, OFF),
    ("optout-emptied", [("write", "optout", f"{PROJECT}\n")], [("write", "optout", "")], OFF, ON),
    ("optout-deleted", [("write", "optout", f"{PROJECT}\n")], [("delete", "optout")], OFF, ON),
    ("optout-replaced-same-size-and-mtime", [("write", "optout", f"{PROJECT}\n")],
     [("same-stat", "optout", "consent-projecX\n")], OFF, ON),
    ("optout-rewritten-in-place-same-size-and-mtime", [("write", "optout", "consent-projecX\n")],
     [("same-stat-in-place", "optout", f"{PROJECT}\n")], ON, OFF),
    ("optout-link-retargeted", [("write", "dotfile-a", "other-project\n"), ("write", "dotfile-b", f"{PROJECT}\n"),
                                ("link", "optout", "dotfiles/a")], [("link", "optout", "dotfiles/b")], ON, OFF),
    ("optout-link-target-edited", [("write", "dotfile-a", "other-project\n"), ("link", "optout", "dotfiles/a")],
     [("write", "dotfile-a", f"{PROJECT}\n")], ON, OFF),
    # ~/.telly_optin by hand, in opt-in mode.
    ("optin-created", [("env", "TELLY_OPTIN", "1")], [("write", "optin", f"{PROJECT}\n")], OFF, ON),
    ("optin-edited", [("env", "TELLY_OPTIN", "1"), ("write", "optin", "other-project\n")],
     [("write", "optin", f"other-project\n{PROJECT}\n")], OFF, ON),
    ("optin-deleted", [("env", "TELLY_OPTIN", "1"), ("write", "optin", f"{PROJECT}\n")], [("delete", "optin")],
     ON, OFF),
    ("optin-replaced-same-size-and-mtime", [("env", "TELLY_OPTIN", "1"), ("write", "optin", f"{PROJECT}\n")],
     [("same-stat", "optin", "consent-projecX\n")], ON, OFF),
    ("optin-rewritten-in-place-same-size-and-mtime",
     [("env", "TELLY_OPTIN", "1"), ("write", "optin", "consent-projecX\n")],
     [("same-stat-in-place", "optin", f"{PROJECT}\n")], OFF, ON),
    # ~/.telly_disable by hand.
    ("disable-file-created", [], [("write", "disable", "")], ON, OFF),
    ("disable-file-deleted", [("write", "disable", "")], [("delete", "disable")], OFF, ON),
    ("disable-file-a-dangling-link", [], [("link", "disable", "nowhere")], ON, OFF),
    # The user config: process settings, user-wide project settings, and one project's table.
    ("config-created", [], [("write", "config", "optin_only = true\n")], ON, OFF),
    ("config-edited", [("write", "config", "optin_only = false\n")], [("write", "config", "optin_only = true\n")],
     ON, OFF),
    ("config-deleted", [("write", "config", "optin_only = true\n")], [("delete", "config")], OFF, ON),
    ("config-replaced-same-size-and-mtime", [("write", "config", "optin_only = false\n")],
     [("same-stat", "config", "optin_only = true \n")], ON, OFF),
    ("config-rewritten-in-place-same-size-and-mtime", [("write", "config", "optin_only = true \n")],
     [("same-stat-in-place", "config", "optin_only = false\n")], OFF, ON),
    ("config-malformed", [("write", "config", "")], [("write", "config", "optin_only = maybe\n")], ON, OFF),
    ("config-mended", [("write", "config", "optin_onyl = true\n")], [("write", "config", "optin_only = false\n")],
     OFF, ON),
    ("config-user-wide-mode", [], [("write", "config", 'mode = "optin"\n')], ON, OFF),
    ("config-user-wide-mode-and-optin-list", [("write", "config", 'mode = "optin"\n')],
     [("write", "optin", f"{PROJECT}\n")], OFF, ON),
    ("config-project-table-mode", [("write", "config", '[project."other-project"]\nmode = "optin"\n')],
     [("write", "config", PROJECT_TABLE + 'mode = "optin"\n')], ON, OFF),
    ("config-project-table-removed", [("write", "config", PROJECT_TABLE + 'mode = "optin"\n')],
     [("write", "config", "")], OFF, ON),
    ("config-send-from-ci", [("env", "CI", "true")], [CI_CONFIG], ON, OFF),
    ("config-project-table-send-from-ci", [("env", "CI", "true")],
     [("write", "config", PROJECT_TABLE + "send_from_ci = false\n")], ON, OFF),
    ("config-project-table-exclude", [], [("write", "config", PROJECT_TABLE + 'exclude = ["consentpkg.add"]\n')],
     ON, {PROJECT: {"consentpkg.neg": 1}}),
    ("config-project-table-include", [("write", "config", PROJECT_TABLE + 'include = ["consentpkg.add"]\n')],
     [("write", "config", PROJECT_TABLE + 'include = ["consentpkg.*"]\n')], {PROJECT: {"consentpkg.add": 1}}, ON),
    ("config-force-packages", [], [("write", "config", 'force_packages = ["forcedpkg"]\n')], ON, ON_AND_FORCED),
    ("config-force-packages-removed", [("write", "config", 'force_packages = ["forcedpkg"]\n')],
     [("delete", "config")], ON_AND_FORCED, ON),
    ("config-level2", [], [("write", "config", "level2 = false\n")], {PROJECT: True}, {PROJECT: False}, "level2"),
    ("config-engine", [], [("write", "config", 'engine = "wrapt"\n')], {PROJECT: "rewrite"}, {PROJECT: "wrapt"},
     "engine"),
    # ... and the settings that say where reports go, and what they carry.
    ("config-spool-dir", [], [("write", "config", 'spool_dir = "{tmp}/other-spool"\n')], {PROJECT: "spool"},
     {PROJECT: "other-spool"}, "where"),
    ("config-storage-type", [], [("write", "config", 'storage_type = "file"\nlocal_storage_path = "{tmp}/out"\n')],
     {PROJECT: "spool"}, {PROJECT: "file"}, "where"),
    ("config-http-server", WITH_ENDPOINTS, [("write", "config", f'http_server = "{OTHER}"\n')], {PROJECT: US},
     {PROJECT: OTHER}, "url"),
    ("config-region", WITH_ENDPOINTS, [("write", "config", 'region = "eu"\n')], {PROJECT: US}, {PROJECT: EU}, "url"),
    ("config-project-table-endpoint", WITH_ENDPOINTS, [("write", "config", PROJECT_TABLE + f'endpoint = "{OTHER}"\n')],
     {PROJECT: US}, {PROJECT: OTHER}, "url"),
    ("config-mode-of-an-opted-in-project", [("write", "optin", f"{PROJECT}\n")],
     [("write", "config", 'mode = "optin"\n')], {PROJECT: False}, {PROJECT: True}, "optin"),
    # The package's own table: telly.toml of an installed wheel.
    ("telly-toml-edited", [], [("write", "telly.toml", TELLY_TOML + 'mode = "optin"\n')], ON, OFF),
    ("telly-toml-replaced-same-size-and-mtime", [("write", "telly.toml", TELLY_TOML + 'mode = "optout"\n')],
     [("same-stat", "telly.toml", TELLY_TOML + 'mode = "optin" \n')], ON, OFF),
    ("telly-toml-deleted", [], [("delete", "telly.toml")], ON, OFF),
    ("telly-toml-created", [("delete", "telly.toml")], [("write", "telly.toml", TELLY_TOML)], OFF, ON),
    ("telly-toml-send-from-ci", [("env", "CI", "true")],
     [("write", "telly.toml", TELLY_TOML + "send_from_ci = false\n")], ON, OFF),
    ("telly-toml-endpoints-edited", WITH_ENDPOINTS,
     [("write", "telly.toml", TELLY_TOML + f'endpoints = {{us = "{OTHER}", eu = "{EU}"}}\n')], {PROJECT: US},
     {PROJECT: OTHER}, "url"),
    ("telly-toml-project-id-changed", [("write", "optout", "consent-renamed\n")],
     [("write", "telly.toml", 'project_id = "consent-renamed"\n')], ON, OFF),
    # ... and [tool.telly] of the checkout it was installed from (which wins over telly.toml).
    ("pyproject-edited", [("checkout", False, f'[tool.telly]\nproject_id = "{PROJECT}"\n')],
     [("write", "pyproject", f'[project]\nname = "consent-pkg"\n\n[tool.telly]\nproject_id = "{PROJECT}"\n'
                             'mode = "optin"\n')], ON, OFF),
    ("pyproject-replaced-same-size-and-mtime",
     [("checkout", False, f'[tool.telly]\nproject_id = "{PROJECT}"\nmode = "optin" \n')],
     [("same-stat", "pyproject", '[project]\nname = "consent-pkg"\nversion = "1.0"\n\n'
                                 f'[tool.telly]\nproject_id = "{PROJECT}"\nmode = "optout"\n')], OFF, ON),
    ("pyproject-created", [("checkout", False, None)],
     [("write", "pyproject", f'[tool.telly]\nproject_id = "{PROJECT}"\nmode = "optin"\n')], ON, OFF),
    ("pyproject-deleted", [("checkout", False, f'[tool.telly]\nproject_id = "{PROJECT}"\nmode = "optin"\n')],
     [("delete", "pyproject")], OFF, ON),
    ("editable-send-from-editable-in-table", [("checkout", True, f'[tool.telly]\nproject_id = "{PROJECT}"\n')],
     [("write", "pyproject", f'[tool.telly]\nproject_id = "{PROJECT}"\nsend_from_editable = true\n')], OFF, ON),
    ("editable-send-from-editable-in-config", [("checkout", True, f'[tool.telly]\nproject_id = "{PROJECT}"\n')],
     [("write", "config", "send_from_editable = true\n")], OFF, ON),
    ("editable-send-from-editable-variable", [("checkout", True, f'[tool.telly]\nproject_id = "{PROJECT}"\n')],
     [("env", "TELLY_SEND_FROM_EDITABLE", "1")], OFF, ON),
    # The environment.
    ("variable-telly-disable-set", [], [("env", "TELLY_DISABLE", "1")], ON, OFF),
    ("variable-telly-disable-unset", [("env", "TELLY_DISABLE", "1")], [("env", "TELLY_DISABLE", None)], OFF, ON),
    ("variable-telly-disable-false", [("env", "TELLY_DISABLE", "1")], [("env", "TELLY_DISABLE", "0")], OFF, ON),
    ("variable-do-not-track-set", [], [("env", "DO_NOT_TRACK", "1")], ON, OFF),
    ("variable-do-not-track-empty", [], [("env", "DO_NOT_TRACK", "")], ON, OFF),
    ("variable-do-not-track-unset", [("env", "DO_NOT_TRACK", "1")], [("env", "DO_NOT_TRACK", None)], OFF, ON),
    ("variable-do-not-track-no", [("env", "DO_NOT_TRACK", "1")], [("env", "DO_NOT_TRACK", "no")], OFF, ON),
    ("variable-telly-optin-set", [], [("env", "TELLY_OPTIN", "1")], ON, OFF),
    ("variable-telly-optin-unset", [("env", "TELLY_OPTIN", "1")], [("env", "TELLY_OPTIN", None)], OFF, ON),
    ("variable-telly-optin-false-over-config", [("write", "config", "optin_only = true\n")],
     [("env", "TELLY_OPTIN", "0")], OFF, ON),
    ("variable-ci-set", [CI_CONFIG], [("env", "CI", "true")], ON, OFF),
    ("variable-ci-vendor-set", [CI_CONFIG], [("env", "GITHUB_ACTIONS", "true")], ON, OFF),
    ("variable-ci-false", [CI_CONFIG, ("env", "GITHUB_ACTIONS", "true")], [("env", "CI", "false")], OFF, ON),
    ("variable-send-from-ci", [("env", "CI", "true")], [("env", "TELLY_SEND_FROM_CI", "0")], ON, OFF),
    ("variable-autoinst-packages-set", [], [("env", "TELLY_AUTOINST_PACKAGES", "forcedpkg")], ON, ON_AND_FORCED),
    ("variable-autoinst-packages-unset", [("env", "TELLY_AUTOINST_PACKAGES", "forcedpkg")],
     [("env", "TELLY_AUTOINST_PACKAGES", None)], ON_AND_FORCED, ON),
    ("variable-include-level2", [], [("env", "TELLY_INCLUDE_LEVEL2", "0")], {PROJECT: True}, {PROJECT: False},
     "level2"),
    ("variable-engine", [], [("env", "TELLY_ENGINE", "wrapt")], {PROJECT: "rewrite"}, {PROJECT: "wrapt"}, "engine"),
    ("variable-spool-dir", [], [("env-path", "TELLY_SPOOL_DIR", "other-spool")], {PROJECT: "spool"},
     {PROJECT: "other-spool"}, "where"),
    ("variable-storage-type", [("env-path", "TELLY_LOCAL_STORAGE_PATH", "out")],
     [("env", "TELLY_STORAGE_TYPE", "file")], {PROJECT: "spool"}, {PROJECT: "file"}, "where"),
    ("variable-http-server", [], [("env", "TELLY_HTTP_SERVER", OTHER)], {PROJECT: COLLECTOR}, {PROJECT: OTHER}, "url"),
    ("variable-region", WITH_ENDPOINTS, [("env", "TELLY_REGION", "eu")], {PROJECT: US}, {PROJECT: EU}, "url"),
    ("variable-level2-plaintext", [("write", "telly.toml", TELLY_TOML + "level2_plaintext = true\n")],
     [("env", "TELLY_LEVEL2_PLAINTEXT", "1")], {PROJECT: False}, {PROJECT: True}, "plaintext_accepted"),
    ("variable-xdg-config-home", [("write", "other-config", "optin_only = true\n")],
     [("config-home", "xdg-config")], ON, OFF),
    ("variable-home", [("write", "optout", f"{PROJECT}\n")], [("home", "other-home")], OFF, ON),
    # The package itself.
    ("source-edited", [], [("write", "source", SOURCE + "\n\ndef mul(a):\n    return a * 2\n")],
     ON, {PROJECT: {"consentpkg.add": 1, "consentpkg.neg": 1, "consentpkg.mul": 1}}),
    ("source-replaced-same-size-and-mtime", [], [("same-stat", "source", SOURCE.replace("neg", "pos"))],
     ON, {PROJECT: {"consentpkg.add": 1, "consentpkg.pos": 1}}),
    ("upgraded", [], [("upgrade", "1.1", TELLY_TOML, SOURCE + "\n\ndef mul(a):\n    return a * 2\n")],
     ON, {PROJECT: {"consentpkg.add": 1, "consentpkg.neg": 1, "consentpkg.mul": 1}}),
    ("upgraded-to-optin-mode", [], [("upgrade", "1.1", TELLY_TOML + 'mode = "optin"\n', SOURCE)], ON, OFF),
    ("upgraded-without-opt-in", [], [("upgrade", "1.1", None, SOURCE)], ON, OFF),
]


@pytest.mark.parametrize(("setup", "change", "before", "after", "view"),
                         [pytest.param(*case[1:5], case[5] if len(case) > 5 else "stats", id=case[0])
                          for case in CASES])
def test_a_change_takes_effect_at_the_next_run(machine, setup, change, before, after, view):
    machine.apply(setup)
    # Twice: the first run builds the index, the code cache and any warm state; the second uses them.
    assert machine.run(view) == before
    assert machine.run(view) == before
    machine.apply(change)
    assert machine.run(view) == after
    # The full path, with no cache read or written, decides the same; and the next warm run too.
    assert machine.run(view, TELLY_NO_CACHE="1") == after
    assert machine.run(view) == after


# The record of the first-run notice (~/.telly_notices), which only a run on a terminal reads.
@pytest.mark.parametrize("change", [
    pytest.param([("delete", "notices")], id="deleted"),
    pytest.param([("write", "notices", "other-project\n")], id="edited"),
    pytest.param([("same-stat", "notices", "consent-projecX\n")], id="replaced-same-size-and-mtime"),
])
def test_a_forgotten_notice_shows_again_at_the_next_run_on_a_terminal(machine, change):
    assert machine.run(tty=True) == (ON, True)  # shown, recorded, and counted
    assert machine.run(tty=True) == (ON, False)
    machine.apply(change)
    assert machine.run(tty=True) == (ON, True)
    assert machine.run(tty=True) == (ON, False)


def test_a_notice_recorded_by_hand_is_not_shown(machine):
    # Runs without a terminal never show the notice, nor record it.
    assert machine.run() == ON
    assert machine.run() == ON
    machine.apply([("write", "notices", f"{PROJECT}\n")])
    assert machine.run(tty=True) == (ON, False)
