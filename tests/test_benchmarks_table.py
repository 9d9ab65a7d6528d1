"""benchmarks/_table.py: targets are read right, verdicts follow them, foreign rows keep their figures."""

import pytest

from benchmarks import _table


@pytest.mark.parametrize("target,value,met", [
    ("<= 1.05", 1.05, True), ("<= 1.05", 1.0501, False), ("≤ 1/200", 0.0049, True), ("≤ 1/200", 0.0051, False),
    (">= 10000", 9999.0, False), ("≥ 5000", 5000.0, True), ("== exact", 1.0, None), ("", 1.0, None),
    ("<= 1", None, None),
])
def test_meets(target, value, met):
    assert _table.meets(value, target) is met


def test_explicit_met_wins_over_the_target():
    assert _table.row("threads, counts", "exact", True, "== exact", met=False)["met"] is False


def test_foreign_rows_keep_their_own_keys_in_the_detail():
    row = _table.normalize({"name": "collector ingest (sqlite)", "rate": 3538}, "collector_load")
    assert row["case"] == "collector ingest (sqlite)"
    assert row["met"] is None and "rate=3538" in row["detail"]
    assert _table.normalize("oops", "x")["detail"] == "run() returned str, not dict"


def test_missed_targets_are_said_plainly():
    rows = [_table.row("a", "ratio", 1.2, "<= 1.05"), _table.row("b", "ratio", 1.0, "<= 1.05"),
            _table.missing("c", "ms", "<= 5", "not yet available")]
    table = _table.format_table(rows)
    assert [line.split()[-1] for line in table.splitlines()[2:5]] == ["MISSED", "ok", "measured"]
    assert "| a | ratio | 1.200 | <= 1.05 | MISSED |" in _table.format_markdown(rows)


def test_a_figure_without_a_target_is_context_not_unmeasured():
    assert _table.verdict(_table.row("accuracy at 100 users", "median error (%)", 14.5, "")) == "no target"
    assert _table.verdict(_table.row("accuracy at 100 users", "median error (%)", None, "")) == "not measured"
    assert _table.verdict(_table.row("rich, for comparison", "ratio", 1.2, "-")) == "no target"
