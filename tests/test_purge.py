"""`python -m telly_autoinst purge`: every file the client keeps for a user is named, then removed."""

import pytest

from tests.support.hook import HATCH_PROGRAM
from tests.support.loopback import dead_url
from tests.support.spooled import wait_sender_done

pytestmark = pytest.mark.slow


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_fifo())


def test_purge_names_then_removes_everything_but_the_users_config(hatch_venv, home, tmp_path):
    config = home / ".config" / "telly_autoinst" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("timer = false\n")
    own_spool = tmp_path / "own-spool"
    env = {"TELLY_HTTP_SERVER": dead_url()}
    hatch_venv.run(["-m", "telly_autoinst", "optout", "sample-hatch"], home, check=True)
    hatch_venv.run(["-m", "telly_autoinst", "optin", "sample-hatch-project"], home, check=True)
    (home / ".telly_consent.lock").write_text("")
    # A run against a dead collector leaves a salt, an index and a queued report behind.
    hatch_venv.run(HATCH_PROGRAM, home, env=env, check=True)
    hatch_venv.run(HATCH_PROGRAM, home, env=dict(env, TELLY_SPOOL_DIR=str(own_spool)), check=True)
    # The salt, and the report built from the queued counts, are the detached sender's doing.
    wait_sender_done(home / ".cache" / "telly_autoinst" / "spool")
    wait_sender_done(own_spool)
    left = _files(home)
    assert ".telly_salt" in left and ".telly_optout" in left and ".telly_optin" in left
    assert any(name.startswith(".cache/telly_autoinst/spool/") and name.endswith(".report") for name in left)
    assert any(p.name.endswith(".report") for p in own_spool.iterdir())
    (own_spool / "mine.txt").write_text("not the client's")

    proc = hatch_venv.run(["-m", "telly_autoinst", "purge"], home, env={"TELLY_SPOOL_DIR": str(own_spool)}, check=True)
    said, _, after = proc.stdout.partition("removed ")
    assert said.startswith("removing:\n")
    # An older version's lock of the lists is removed too (the lists' lock itself never stays behind).
    for name in (".telly_salt", ".telly_optout", ".telly_optin", ".telly_consent.lock", ".cache/telly_autoinst"):
        assert f"  {home / name}\n" in said
    assert str(own_spool) in said and "mine.txt" not in said
    assert _files(home) == [".config/telly_autoinst/config.toml"]
    assert [p.name for p in own_spool.iterdir()] == ["mine.txt"]
    assert proc.stderr == ""
    # Any later interpreter start (pip's own, to uninstall) would index the venv again, unless
    # the kill switch is on, as docs/users.md says to do it.
    again = hatch_venv.run(["-m", "telly_autoinst", "purge"], home, check=True,
                           env={"TELLY_SPOOL_DIR": str(own_spool), "TELLY_DISABLE": "1"})
    assert again.stdout.startswith("nothing to remove")
    assert _files(home) == [".config/telly_autoinst/config.toml"]
