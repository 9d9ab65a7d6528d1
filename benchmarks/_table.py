"""The row format shared by every case, the target check, and the printed table."""

import re

_KEYS = ("case", "measured", "value", "target", "met", "detail")
_TARGET = re.compile(r"^\s*(<=|>=|≤|≥|==)\s*([-+0-9.eE/]+)\s*(.*)$")


def parse_target(target):
    """``"<= 1.05"`` -> (op, number); ``"≤ 1/200"`` -> ("<=", 0.005); None when not numeric."""
    match = _TARGET.match(str(target or ""))
    if not match:
        return None
    op = {"≤": "<=", "≥": ">="}.get(match.group(1), match.group(1))
    text = match.group(2)
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return op, float(num) / float(den)
        return op, float(text)
    except (ValueError, ZeroDivisionError):
        return None


def meets(value, target):
    """Whether VALUE meets TARGET, or None when either is missing or not numeric."""
    parsed = parse_target(target)
    if value is None or parsed is None:
        return None
    op, bound = parsed
    return {"<=": value <= bound, ">=": value >= bound, "==": value == bound}[op]


def row(case, measured, value, target, detail="", met=None):
    """A result row; ``met`` is computed from value and target unless given (e.g. exact counts)."""
    return {
        "case": case,
        "measured": measured,
        "value": value,
        "target": target,
        "met": meets(value, target) if met is None else met,
        "detail": detail,
    }


def missing(case, measured, target, why):
    """A row for a case that could not be measured, saying why."""
    return {"case": case, "measured": measured, "value": None, "target": target, "met": None, "detail": why}


def normalize(item, source):
    """Fill in what a foreign ``run()`` left out, so one odd row cannot break the table.

    Keys outside the row format are kept and also appended to ``detail``, so a case that
    returns its own figures still shows them.
    """
    if not isinstance(item, dict):
        return missing(source, "", "", f"run() returned {type(item).__name__}, not dict")
    out = dict(item)
    out.setdefault("case", out.get("name") or source)
    out.setdefault("measured", "")
    out.setdefault("value", None)
    out.setdefault("target", "")
    out.setdefault("detail", "")
    extra = {k: v for k, v in item.items() if k not in _KEYS and k != "name"}
    if extra:
        out["detail"] = "; ".join(filter(None, [str(out["detail"]), ", ".join(f"{k}={v}" for k, v in extra.items())]))
    if "met" not in out:
        out["met"] = meets(out["value"], out["target"]) if isinstance(out["value"], (int, float)) else None
    return out


def _fmt_value(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.3f}"
    return f"{value:.4g}"


def verdict(item):
    if item.get("met") is None and item.get("value") is not None and item.get("target") in (None, "", "-"):
        return "no target"  # a figure printed for context (e.g. the other scales of a target)
    return {True: "ok", False: "MISSED", None: "not measured"}[item.get("met")]


COLUMNS = ("case", "measured", "value", "target", "verdict")


def format_table(rows, details=True):
    """A fixed-width table; details follow as numbered notes so the table stays narrow."""
    cells = [COLUMNS]
    notes = []
    for i, item in enumerate(rows, 1):
        cells.append((f"[{i}] {item['case']}", str(item["measured"]), _fmt_value(item["value"]),
                      str(item["target"]), verdict(item)))
        if details and item.get("detail"):
            notes.append(f"[{i}] {item['detail']}")
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + ([""] + notes if notes else []))


def format_markdown(rows):
    """The same table as Markdown, for the README."""
    out = ["| case | measured as | value | target | verdict |", "| --- | --- | --- | --- | --- |"]
    for item in rows:
        out.append(f"| {item['case']} | {item['measured']} | {_fmt_value(item['value'])} | "
                   f"{item['target']} | {verdict(item)} |")
    return "\n".join(out)
