"""Print the client's import graph, read from the source (AST), and exit 1 when it has a cycle.

The client is the ``telly_autoinst`` package (the collector is a distribution of its own, in
``collector/``, and the client never imports it). Every import statement counts, including those
inside functions: a deferred import breaks no start-up, but a cycle through one still hides where
state lives. Imports under ``if TYPE_CHECKING:`` are left out, since they never run.

Usage: python tools/import_graph.py [--root DIR] [--quiet]
Exit status: 0 acyclic, 1 one or more cycles (each is printed), 2 a file that does not parse.
"""

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = "telly_autoinst"


def modules(root):
    """Map each client module's dotted name to its file, for the package directory under ``root``."""
    found = {}
    base = Path(root) / PACKAGE
    for path in sorted(base.rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((PACKAGE, *parts))] = path
    return found


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree):
    """Yield (statement, deferred) for every import that runs, deferred when inside a function."""

    def walk(node, deferred):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    yield from walk(ast.Module(body=[other], type_ignores=[]), deferred)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, deferred
            inner = deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, inner)

    yield from walk(tree, False)


def _resolve(name, path, node, known):
    """The client modules that one import statement in module ``name`` (file ``path``) loads."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
        return [_nearest(t, known) for t in targets if _nearest(t, known)]
    if node.level:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module or ""
    found = []
    for alias in node.names:
        # `from pkg import sub` loads the submodule; `from mod import name` loads only mod.
        target = f"{base}.{alias.name}"
        resolved = target if target in known else _nearest(base, known)
        if resolved and resolved not in found:
            found.append(resolved)
    return found


def _nearest(dotted, known):
    """The longest prefix of ``dotted`` that is a client module, or None (stdlib, third party, ...)."""
    while dotted:
        if dotted in known:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def graph(root):
    """{module: {imported module: deferred?}}; an edge is deferred only if every import of it is."""
    known = modules(root)
    edges = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out = edges.setdefault(name, {})
        for node, deferred in _imports(tree):
            for target in _resolve(name, path, node, known):
                if target != name:
                    out[target] = out.get(target, True) and deferred
    return edges


def cycles(edges):
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges) + 100))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def _loop_through(edges, component):
    """The shortest loop from the component's first module back to itself, for the message."""
    members = set(component)
    start = component[0]
    came_from = {}
    queue = [start]
    for node in queue:  # breadth first: the queue grows while we walk it
        for target in sorted(edges[node]):
            if target == start:
                loop = [start]
                while node != start:
                    loop.append(node)
                    node = came_from[node]
                return [start] + loop[:0:-1] + [start]
            if target in members and target not in came_from:
                came_from[target] = node
                queue.append(target)
    return component  # unreachable for a strongly connected component


def _short(name):
    return name[len(PACKAGE) + 1:] if name.startswith(PACKAGE + ".") else name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent),
                        help="the checkout that holds the telly_autoinst package (default: this one)")
    parser.add_argument("--quiet", action="store_true", help="print only the cycles")
    args = parser.parse_args(argv)
    try:
        edges = graph(args.root)
    except SyntaxError as exc:
        print(f"import_graph: cannot parse {exc.filename}: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        for name in sorted(edges):
            targets = ", ".join(
                _short(t) + (" (deferred)" if deferred else "") for t, deferred in sorted(edges[name].items())
            )
            print(f"{_short(name) or PACKAGE} -> {targets or '-'}")
    found = cycles(edges)
    for component in found:
        loop = " -> ".join(_short(m) for m in _loop_through(edges, component))
        print(f"import cycle among {', '.join(_short(m) for m in component)}: {loop}", file=sys.stderr)
    if not found and not args.quiet:
        print(f"no import cycle among {len(edges)} client modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
