"""The source rewrite behind the in-frame engine: one counting statement at the top of each candidate function.

Modelled on pytest's assertion rewriting: the module's source is parsed, statements are added
to the tree, and the tree is compiled with the flags the import system uses. Every added node
copies the location of a statement that is already there, so line numbers, ``co_firstlineno``,
tracebacks, ``inspect.getsource`` and coverage see the module as written.

The added statements name no global (nothing is added to the module's namespace, and a module
that shadows a builtin cannot break them): each is a method call on a string constant, a
*placeholder* that the engine swaps in ``co_consts`` for the real object when the code is
loaded (``marshal`` could not store those objects in the cache). A call on the constant itself
would do, but the compiler warns about calling a ``str`` literal, hence ``.__next__()`` and
``.__call__()``:

* ``"<ph>".__next__()`` in a function: steps that key's ``itertools.count`` (C code, no frame);
* ``"<ph>".__call__(self)`` in an ``__init__``: the instantiation observer, which returns
  before the body starts;
* ``"<ph>".__call__()`` as the module's last statement: tells the engine the module has run,
  from inside the module's own frame (no frame of ours wraps the module's execution).

Candidates are the functions that selection could ever pick: defined at module level or in a
class body (also under ``if``/``try``/``with``/``for``/``match``), with a public name, a name in
a literal ``__all__``, a private name that the same scope publishes under a public alias
(``next = __next__``), or ``__init__`` in a class (observed through its first positional
parameter, or ``*args[:1]``). Functions nested in functions are never
selected (their qualified names hold ``<locals>``). Selection at run time decides which of the
candidates are counted; the others step a counter nobody reads.

This module imports ``ast``; it runs only when the cache has no code for a source file.
"""

import ast
import sys

from ._base import CALL, INIT, PLACEHOLDER, SITE_CONST, TAIL

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_BLOCKS = ("body", "orelse", "finalbody")


def rewrite(source, path):
    """``((qualnames, calls, inits, tree), code)``: the module compiled with counting statements,
    what each placeholder is, and where the placeholders are (``_base.PLACEHOLDER`` describes them).

    Placeholders are numbered by kind: ``0 .. calls-1`` count calls, the next ``inits`` observe
    instantiation, and the last one is the module's end; ``qualnames[n]`` is placeholder ``n``'s
    function (``""`` for the end). So binding makes each kind's values in one step, in C, and
    lays them out in this order.

    ``tree`` maps the ``co_consts`` indexes that lead to code objects holding placeholders to
    the placeholder number, for a function whose only placeholder is its own at ``co_consts[1]``
    (most of them), or else to their own trees (key -1: the ``(co_consts index, placeholder
    number)`` pairs of a code object's own placeholders), so binding visits those code objects only.
    Raises SyntaxError (and whatever ``compile`` raises) exactly where the normal import would.
    """
    tree: Any = compile(source, path, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    sites: list[tuple[str, str, Any]] = []
    _block(tree.body, "", False, _literal_all(tree.body), sites)
    _add_tail(tree, sites)
    ordered = [site for kind in (CALL, INIT, TAIL) for site in sites if site[0] == kind]
    for number, (_, _, constant) in enumerate(ordered):
        constant.value = PLACEHOLDER + str(number)
    # The flags of importlib's source_to_code: the future imports of the module itself only.
    code = compile(tree, path, "exec", dont_inherit=True, optimize=-1)
    calls = sum(1 for site in sites if site[0] == CALL)
    inits = sum(1 for site in sites if site[0] == INIT)
    return (tuple(qualname for _, qualname, _ in ordered), calls, inits, _placeholder_tree(code)), code


def _placeholder_tree(code):
    tree: dict[int, Any] = {}
    own = [(i, int(value[len(PLACEHOLDER):])) for i, value in enumerate(code.co_consts)
           if type(value) is str and value.startswith(PLACEHOLDER)]
    if own:
        tree[-1] = own
    for i, value in enumerate(code.co_consts):
        if hasattr(value, "co_consts"):
            sub = _placeholder_tree(value)
            if list(sub) == [-1] and [index for index, _ in sub[-1]] == [SITE_CONST]:
                tree[i] = sub[-1][0][1]  # a function's own counting statement, nothing nested
            elif sub:
                tree[i] = sub
    return tree


def _literal_all(body):
    """Names listed in module-level ``__all__`` literals (assignments, ``+=``, ``.extend``)."""
    names = set()
    for node in body:
        value = None
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            value = node.value
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name) \
                and node.target.id == "__all__":
            value = node.value
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "__all__":
                value = ast.Tuple(elts=list(node.value.args), ctx=ast.Load())
        if value is not None:
            for item in ast.walk(value):
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    names.add(item.value)
    return names


def _public_aliases(statements):
    """Private names published under a public one anywhere in the same scope (``next = __next__``;
    more-itertools' ``else: batched = _batched``, in another block than the ``def``).

    Selection finds such a function through its public alias but keys it by its own qualified
    name, as the other engines count it; so its body must carry a counter too.
    """
    return {node.value.id for node in _scope(statements)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
            and any(isinstance(t, ast.Name) and not t.id.startswith("_") for t in node.targets)}


def _scope(statements):
    """The statements of one scope: ``statements`` and those of their compound blocks, not of
    the functions and classes they define."""
    for node in statements:
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for inner in _inner_blocks(node):
                yield from _scope(inner)


def _inner_blocks(node):
    """The statement lists of a compound statement (``if``/``try``/``with``/``for``/``match``)."""
    for field in _BLOCKS:
        inner = getattr(node, field, None)
        if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
            yield inner
    for handler in getattr(node, "handlers", ()) or ():
        yield handler.body
    for case in getattr(node, "cases", ()) or ():  # match (3.10+)
        yield case.body


def _block(statements, prefix, in_class, exported, sites, aliased=None):
    if aliased is None:  # a new scope: the module's or a class body's
        aliased = _public_aliases(statements)
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _function(node, prefix, in_class, exported, aliased, sites)
        elif isinstance(node, ast.ClassDef):
            _block(node.body, f"{prefix}{node.name}.", True, exported, sites)
        else:
            # Compound statements at the same level define names at that level too.
            for inner in _inner_blocks(node):
                _block(inner, prefix, in_class, exported, sites, aliased)


def _function(node, prefix, in_class, exported, aliased, sites):
    args: list[ast.expr]
    name = node.name
    if in_class and name == "__init__":
        positional = list(getattr(node.args, "posonlyargs", [])) + list(node.args.args)
        if positional:
            args = [ast.Name(id=positional[0].arg, ctx=ast.Load())]
        elif node.args.vararg is not None:
            # ``def __init__(*args, **kwargs)`` (jinja2's Namespace): the instance is args[0];
            # ``*args[:1]`` passes it, or nothing, and a slice never raises into the host.
            head = ast.Subscript(value=ast.Name(id=node.args.vararg.arg, ctx=ast.Load()),
                                 slice=ast.Slice(lower=None, upper=ast.Constant(value=1), step=None),
                                 ctx=ast.Load())
            args = [ast.Starred(value=head, ctx=ast.Load())]
        else:  # no instance to look at: the class is listed as not counted
            return
        kind, method = INIT, "__call__"
    elif not name.startswith("_") or name in aliased or (not in_class and name in exported):
        kind, args, method = CALL, [], "__next__"
    else:
        return
    constant = ast.Constant(value=PLACEHOLDER)  # numbered once every site is known (see rewrite)
    sites.append((kind, prefix + name, constant))
    call = ast.Call(func=ast.Attribute(value=constant, attr=method, ctx=ast.Load()), args=args, keywords=[])
    body = node.body
    first = 1 if _is_docstring(body[0]) else 0
    # The line of the first real statement: a line that already runs, so no line event,
    # traceback line or coverage line is new. A body that is only a docstring runs no statement
    # of its own: its implicit ``return None`` is on the docstring's line on 3.9 and on the
    # function's first line (its first decorator's, or the ``def``) from 3.10 on, where pdb
    # stops when stepping in.
    if first < len(body):
        anchor = body[first]
    elif sys.version_info >= (3, 10):
        anchor = node.decorator_list[0] if node.decorator_list else node
    else:
        anchor = body[0]
    body.insert(first, _located(ast.Expr(value=call), anchor))


def _add_tail(tree, sites):
    constant = ast.Constant(value=PLACEHOLDER)
    sites.append((TAIL, "", constant))
    call = ast.Call(func=ast.Attribute(value=constant, attr="__call__", ctx=ast.Load()), args=[], keywords=[])
    statement = ast.Expr(value=call)
    if tree.body:
        # The last top-level statement's first line has run (or been tested) already.
        _located(statement, tree.body[-1])
    else:
        node: Any  # every node ast.walk yields here is an expression or a statement: located
        for node in ast.walk(statement):
            node.lineno, node.col_offset, node.end_lineno, node.end_col_offset = 1, 0, 1, 0
    tree.body.append(statement)


def _is_docstring(node):
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _located(statement, anchor):
    line, col = anchor.lineno, anchor.col_offset
    node: Any  # every node ast.walk yields here is an expression or a statement: located
    for node in ast.walk(statement):
        node.lineno, node.col_offset = line, col
        node.end_lineno, node.end_col_offset = line, col
    return statement
