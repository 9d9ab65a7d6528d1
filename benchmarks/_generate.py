"""Source trees of the synthetic packages the cases install: opted in through the wheel route.

Both packages declare a ``telly`` entry point and ship ``telly.toml``, exactly as a package
author would, so the hook finds them through its normal discovery (no forcing).
"""

from pathlib import Path

GEN = "telly_bench_gen"
CALLS = "telly_bench_calls"

MODULES = 200
FUNCTIONS_PER_MODULE = 10
CLASSES_PER_MODULE = 2
METHODS_PER_CLASS = 4  # one of them a classmethod, one a staticmethod
# 200 * (10 functions + 2 * (1 class + 4 methods)) = 4,000 public callables.
PUBLIC_CALLABLES = MODULES * (FUNCTIONS_PER_MODULE + CLASSES_PER_MODULE * (1 + METHODS_PER_CLASS))

_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "1.0.0"

[project.entry-points.telly]
{name} = "{name}"

[tool.hatch.build.targets.wheel]
packages = ["{name}"]
"""


def _project(root, name):
    tree = Path(root) / name
    (tree / name).mkdir(parents=True, exist_ok=True)
    (tree / "pyproject.toml").write_text(_PYPROJECT.format(dist=name.replace("_", "-"), name=name))
    (tree / name / "telly.toml").write_text(f'project_id = "{name}-project"\n')
    return tree


def _module_source(index):
    """One module of ordinary code: constants, small functions, two classes, a sibling import."""
    lines = [f'"""Generated module {index} of {GEN}."""', "", "import functools", ""]
    if index:
        lines += [f"from .m{index - 1:03d} import f{index - 1:03d}_0 as _previous", ""]
    lines += [f"LIMIT = {index}", ""]
    for f in range(FUNCTIONS_PER_MODULE):
        lines += ["", f"def f{index:03d}_{f}(value, scale=2):",
                  f'    """Function {f}: scales and clamps a value."""',
                  "    result = value * scale + LIMIT",
                  f"    return min(result, {1000 + f})", ""]
    for c in range(CLASSES_PER_MODULE):
        lines += ["", f"class C{index:03d}_{c}:", f'    """Class {c} of module {index}."""', "",
                  "    def __init__(self, value=0):", "        self.value = value", "",
                  "    def get(self):", "        return self.value", "",
                  "    def scaled(self, factor):", "        return self.value * factor", "",
                  "    @classmethod", "    def make(cls, value):", "        return cls(value)", "",
                  "    @staticmethod", "    def describe(value):", "        return f'value={value}'", "",
                  "    @functools.cached_property", "    def _cached(self):", "        return self.value", ""]
    return "\n".join(lines) + "\n"


def write_gen(root):
    """The big package: MODULES modules imported by its ``__init__``, PUBLIC_CALLABLES callables."""
    tree = _project(root, GEN)
    pkg = tree / GEN
    imports = [f"from . import m{i:03d}" for i in range(MODULES)]
    (pkg / "__init__.py").write_text(f'"""Generated package: {MODULES} modules."""\n\n' + "\n".join(imports) + "\n")
    for i in range(MODULES):
        (pkg / f"m{i:03d}.py").write_text(_module_source(i))
    return tree


_CALLS_SOURCE = '''\
"""Tiny callables whose per-call cost the cases measure."""


def work():
    return None


class Worker:
    def run(self):
        return None

    @classmethod
    def make(cls):
        return None
'''


def write_calls(root):
    """The small package: one function, one method, one classmethod."""
    tree = _project(root, CALLS)
    (tree / CALLS / "__init__.py").write_text(_CALLS_SOURCE)
    return tree
