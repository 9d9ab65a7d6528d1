"""Level II: the salt file, its fallbacks, and per-project HMAC keys."""

import hashlib
import hmac
import os
import stat
import subprocess
import sys

import pytest

from telly_autoinst import identity


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    identity.salt.cache_clear()
    yield home
    identity.salt.cache_clear()


def test_salt_created_once_with_mode_0600(fresh_home):
    value, source = identity.salt("random_uuid4")
    path = fresh_home / ".telly_salt"
    assert source == "random_uuid4"
    assert path.read_text() == value and len(value) == 36
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    identity.salt.cache_clear()
    assert identity.salt("random_uuid4") == (value, "random_uuid4")
    assert not [p for p in os.listdir(fresh_home) if p.endswith(".tmp")]


def test_unreadable_home_falls_back_to_machine_id(fresh_home, monkeypatch):
    # A HOME under a regular file cannot be read or created by anyone, root included.
    (fresh_home / "file").write_text("")
    monkeypatch.setenv("HOME", str(fresh_home / "file" / "home"))
    value, source = identity.salt("random_uuid4")
    assert source == "machine_id"
    assert value == identity._machine_id()


def test_unwritable_home_falls_back_to_machine_id(fresh_home, monkeypatch):
    # /proc/self is a directory that has no salt file and where nobody, root included, can create one.
    monkeypatch.setenv("HOME", "/proc/self")
    value, source = identity.salt("random_uuid4")
    assert source == "machine_id"
    assert value == identity._machine_id()


def test_machine_id_salt_type(fresh_home):
    assert identity.salt("machine_id")[1] == "machine_id"
    assert not (fresh_home / ".telly_salt").exists()


def test_concurrent_first_runs_agree_on_one_salt(fresh_home):
    code = "from telly_autoinst.identity import salt; print(salt()[0])"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, HOME=str(fresh_home))) for _ in range(8)]
    salts = {p.communicate()[0].strip() for p in procs}
    assert len(salts) == 1
    assert salts == {(fresh_home / ".telly_salt").read_text()}


def test_hashes_are_hmac_under_a_per_project_key(fresh_home):
    a = identity.level2_hashes("project-a")
    b = identity.level2_hashes("project-b")
    assert set(a) == {"user", "home", "machine", "host"}
    for field in a:
        assert a[field] != b[field]
        assert len(a[field]) == 64
    salt = identity.salt()[0]
    key = hmac.new(salt.encode(), b"telly-autoinst/level2/project-a", hashlib.sha256).digest()
    assert a["home"] == hmac.new(key, str(fresh_home).encode(), hashlib.sha256).hexdigest()
    # Not the original's unkeyed SHA-256(value + salt).
    assert a["home"] != hashlib.sha256((str(fresh_home) + salt).encode()).hexdigest()
    assert identity.level2_hashes("project-a") == a


@pytest.mark.parametrize("key", [b"", b"k", b"x" * 64, b"y" * 65, b"z" * 200])
@pytest.mark.parametrize("message", [b"", b"hello", b"\xff" * 300])
def test_builtin_hmac_equals_stdlib(key, message):
    assert identity._hmac_sha256(key, message).hexdigest() == hmac.new(key, message, hashlib.sha256).hexdigest()


def test_hostname_matches_socket():
    import socket

    assert identity._hostname() == socket.gethostname()
