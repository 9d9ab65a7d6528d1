"""Reading back the report files a benchmark child wrote at exit (``TELLY_STORAGE_TYPE=file``)."""

import json


def counted(directory, key):
    """The calls of KEY summed over every ``*.json`` report in DIRECTORY."""
    total = 0
    for path in directory.glob("*.json"):
        total += json.loads(path.read_text()).get("stats", {}).get(key, 0)
    return total
