"""Side-by-side benchmarks of the hook against its anchors (issue 4); run ``python -m benchmarks``.

Every case module exposes ``run() -> list[dict]`` (the suite passes ``quick=True`` when the
function accepts it). A row is a dict with these keys (see ``_table.row``):

- ``case``: what is measured, e.g. ``interpreter start, python -c pass``;
- ``measured``: the figure and its anchor, e.g. ``ratio to the same venv without the .pth``;
- ``value``: the figure (float), or None when it could not be measured;
- ``target``: the target as text, ``"<= 1.05"``, ``">= 10000"`` (``≤``/``≥`` also accepted);
- ``met``: True/False, or None when not measured (computed from value and target if absent);
- ``detail``: medians, sample counts, anything a reader needs to trust the figure.
"""
