"""The real packages the whole-run rows watch, and one short program of ordinary use for each.

The set is the one the default engine is tested on (tests/test_engines_packages.py): packages
whose shapes once sent the in-frame engine to a fallback (generated ``__init__`` methods, an
``__init__(*args, **kwargs)``, a private function published under a public name, a reassigned
``__module__``). Versions are pinned, the newest that still install on 3.9, so that every Python
runs the same code. Each program does what a short script or CLI run does with the package, and
exits; the package is watched by forcing its modules in (``TELLY_AUTOINST_PACKAGES``), as the
test does.
"""

import collections

Package = collections.namedtuple("Package", "name requirement watched program")

CLICK_PROGRAM = """\
import click


@click.command()
@click.option("--name", default="world")
@click.option("--count", default=1, type=int)
def hello(name, count):
    for _ in range(count):
        click.echo(f"hello {name}")


hello(["--name", "bench", "--count", "2"], standalone_mode=False)
"""

_JINJA2 = """\
import jinja2

page = jinja2.Environment(autoescape=True).from_string(
    "<h1>{{ title }}</h1>{% set ns = namespace(total=0) %}<ul>{% for item in items %}"
    "<li>{{ item.name | title }}: {{ item.price }}</li>{% set ns.total = ns.total + item.price %}"
    "{% endfor %}</ul><p>total {{ ns.total }}</p>"
)
print(page.render(title="Order <1>", items=[{"name": "apple", "price": 3}, {"name": "pear", "price": 4}]))
print(jinja2.Template("Hello {{ name }}!").render(name="bench"))
"""

_REQUESTS = """\
import requests

session = requests.Session()
request = requests.Request("POST", "https://example.org/api/items", params={"q": "bench"},
                           json={"name": "apple"}, headers={"Accept": "application/json"})
prepared = session.prepare_request(request)
print(prepared.method, prepared.url, prepared.headers["Content-Type"], len(prepared.body))
"""

_RICH = """\
import io

from rich.console import Console
from rich.table import Table

table = Table(title="Report")
table.add_column("name")
table.add_column("count", justify="right")
for name, count in (("apples", 3), ("pears", 4)):
    table.add_row(name, str(count))
console = Console(file=io.StringIO(), width=60)
console.print("[bold]hello[/bold] world", table)
print(console.file.getvalue())
"""

_ATTRS = """\
import attrs


@attrs.define
class Point:
    x: int
    y: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))


@attrs.frozen
class Line:
    start: Point
    end: Point


line = Line(Point(1, 2), Point(3))
moved = attrs.evolve(line, end=Point(5, 6))
print(attrs.asdict(moved), line == moved, attrs.fields(Point).y.default)
"""

_HTTPX = """\
import httpx


def answer(request):
    return httpx.Response(200, json={"path": request.url.path, "q": request.url.params.get("q")})


with httpx.Client(transport=httpx.MockTransport(answer), base_url="https://example.org") as client:
    response = client.get("/api/items", params={"q": "bench"}, headers={"Accept": "application/json"})
    response.raise_for_status()
    print(response.json())
"""

# Requirement parsing loads packaging's dataclass modules (_tokenizer's Token).
_PACKAGING = """\
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

requirement = Requirement("demo[extra]>=1.0,<3; python_version > '3'")
versions = sorted(Version(v) for v in ("1.10", "1.2", "2.0rc1", "0.9"))
print(str(requirement), requirement.marker.evaluate(), [str(v) for v in versions],
      list(SpecifierSet(">=1.0,<2").filter(map(str, versions))), Marker("os_name == 'posix'").evaluate())
"""

_MORE_ITERTOOLS = """\
import more_itertools

data = list(range(20))
print(list(more_itertools.chunked(data, 6)), more_itertools.first(data), more_itertools.last(data),
      list(more_itertools.windowed(data[:5], 3)), list(more_itertools.batched(data, 7)),
      more_itertools.ilen(more_itertools.unique_everseen(x % 5 for x in data)))
"""

# click and jinja2 carry the targets; the others are measured for comparison.
PACKAGES = (
    Package("click", "click==8.1.8", "click", CLICK_PROGRAM),
    Package("jinja2", "jinja2==3.1.6", "jinja2", _JINJA2),
    Package("requests", "requests==2.32.5", "requests", _REQUESTS),
    Package("rich", "rich==15.0.0", "rich", _RICH),
    Package("attrs", "attrs==26.1.0", "attr,attrs", _ATTRS),
    Package("httpx", "httpx==0.28.1", "httpx", _HTTPX),
    Package("packaging", "packaging==26.3", "packaging", _PACKAGING),
    Package("more-itertools", "more-itertools==10.8.0", "more_itertools", _MORE_ITERTOOLS),
)
WITH_TARGETS = ("click", "jinja2")
