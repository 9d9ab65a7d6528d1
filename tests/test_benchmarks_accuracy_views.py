"""benchmarks/accuracy_views.py: each row gets the issue's target of its size and profile; runs merge by case."""

from benchmarks import accuracy_views


def test_targets_follow_the_size_and_the_profile():
    # Below 1,000 daily users the targets are the small profile's, every new project's.
    assert accuracy_views.target(100, "small", "7", "top5_users") == "<= 8"
    assert accuracy_views.target(100, "large", "7", "top5_users") == ""
    # From 1,000 on, both profiles'; 10,000 is held to the targets of ">= 1,000".
    assert accuracy_views.target(10000, "small", "28", "calls") == "<= 5"
    assert accuracy_views.target(1000, "large", "1", "dau") == "<= 2.5"
    # A first day's targets are the large profile's: a small project's first day shows no feature.
    assert accuracy_views.target(1000, "large", "first", "top10_users") == "<= 12"
    assert accuracy_views.target(1000, "small", "first", "top10_users") == ""
    assert accuracy_views.target(10, "small", "28", "dau") == ""


def test_a_run_replaces_its_own_rows_and_keeps_the_others_in_order():
    def row(case, value, order):
        return {"case": case, "value": value, "order": order}

    old = [row("10 a", 1, [10, 0]), row("100 a", 2, [100, 0]), row("10000 a", 3, [10000, 0])]
    merged = accuracy_views.merge(old, [row("100 a", 9, [100, 0]), row("100 b", 8, [100, 1])])
    assert [(r["case"], r["value"]) for r in merged] == [("10 a", 1), ("100 a", 9), ("100 b", 8), ("10000 a", 3)]
