"""What the ``.pth`` line runs at interpreter start: it puts the finder's stand-in in place.

Rules for this module, because it runs in every interpreter that has the package installed:
``sys`` only, and no module of the package until the stand-in wakes; never raise, never print;
safe to run twice. It sits beside the package in site-packages, not inside it (as
``_virtualenv`` and setuptools' ``_distutils_hack`` do), so that a start does not import the
package too.

The stand-in is this module itself, a finder through its function :func:`find_spec`. It holds
the stand-in's state and what every start runs; what the stand-in does when it wakes lives in
``telly_autoinst._wake``, and what only Python 3.9 needs in ``_telly_autoinst_stdlib``.
"""

# Every start pays for what is here, measured in instructions (see
# docs/decisions/0024-start-up-stand-in.md): each function is unmarshalled, and a class would be
# built. A class's instance, left on sys.meta_path until exit, would also keep its module's
# globals alive into the last stage of shutdown on Python 3.11, and os with them if they held it
# (+1.3% of `python -c pass` there).
import sys

telly_autoinst_gate = True  # how start() and finder.uninstall() recognise the stand-in
# The stand-in's state, kept by telly_autoinst._wake:
watched = None  # type: frozenset[str] | None  # the watched top-level names, once awake
waking = False  # while it wakes: its own imports (and another thread's) pass through untouched
# Python 3.9 has no sys.stdlib_module_names: start() imports _telly_autoinst_stdlib there.
_stdlib = getattr(sys, "stdlib_module_names", None)  # type: frozenset[str] | None
_started = False
# Imports that never wake the stand-in: the standard library, what site itself looks for, and
# this package.
_NEVER_WAKE = ("sitecustomize", "usercustomize", "telly_autoinst")


def start():
    """Put the import hook's stand-in (this module) first on ``sys.meta_path``.

    It wakes at the first import from outside the standard library: most starts never import a
    watched package, and many (``python -c pass``, a CLI tool's own ``--version``) import
    nothing outside the standard library.
    """
    global _started
    if _started:  # a .pth seen twice (two site dirs, or site.addsitedir again)
        return
    _started = True
    try:
        # A module imported before us (by an earlier .pth) is never imported again, so no later
        # import would wake the stand-in for it: it wakes now, and instruments it if it is
        # watched. Only a public top-level module from outside the standard library can be.
        others = set(sys.modules).difference(_stdlib or (), _NEVER_WAKE)  # in C: most names go here
        names = [n for n in others if "." not in n and n[:1] != "_"]
        if _stdlib is None:
            # Python 3.9. Imported before the stand-in is in place, whose find_spec needs it too:
            # without it, the program runs untouched.
            from _telly_autoinst_stdlib import loaded_from_elsewhere

            names = loaded_from_elsewhere(names)
        gate = sys.modules[__name__]
        if gate in sys.meta_path:
            return
        sys.meta_path.insert(0, gate)
        if names:
            from telly_autoinst._wake import wake

            wake(gate)
    except Exception:
        # Whatever went wrong (broken cache, unreadable home, read-only file system),
        # the program runs untouched.
        pass


def find_spec(fullname, path=None, target=None):
    """The finder's protocol: None for every import until a watched module is imported; the
    real ``WatchFinder`` then takes the stand-in's place and finds that module's spec."""
    top = fullname.partition(".")[0]
    if watched is None:
        if waking or top in _NEVER_WAKE or top in (_stdlib or sys.modules["_telly_autoinst_stdlib"].names()):
            return None
    elif top not in watched:
        return None
    try:
        from telly_autoinst import _wake
    except ImportError:
        # The package was beside this module at start but is not on sys.path any more (pip's
        # isolated build environments take site-packages off it): nothing to count with.
        try:  # another thread may have removed it already
            sys.meta_path.remove(sys.modules[__name__])
        except (ValueError, KeyError):
            pass
        return None
    return _wake.find_spec(sys.modules[__name__], fullname, path, target)
