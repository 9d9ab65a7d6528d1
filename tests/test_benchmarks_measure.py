"""benchmarks/_measure.py: the instruction count is a real count, and absent without valgrind."""

import shutil
import sys

import pytest

from benchmarks import _measure


def test_no_valgrind_means_no_count(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert _measure.instructions([sys.executable, "-c", "pass"], {}) is None


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_more_work_counts_more_instructions():
    little = _measure.instructions([sys.executable, "-S", "-c", "pass"], {})
    more = _measure.instructions([sys.executable, "-S", "-c", "sum(range(300000))"], {})
    assert 0 < little < more
    # The same run gives (nearly) the same count, hash seed pinned: what makes ratios trustworthy.
    assert abs(_measure.instructions([sys.executable, "-S", "-c", "pass"], {}) - little) <= little // 100


def test_a_failing_process_is_an_error_not_a_count():
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    with pytest.raises(RuntimeError, match="callgrind"):
        _measure.instructions([sys.executable, "-S", "-c", "raise SystemExit(3)"], {})
