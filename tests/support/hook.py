"""Code for a hooked venv's interpreter (``venv.run``): probes that show the import hook (its entries
on ``sys.meta_path``, the names it watches), and a watched program for it to count."""

# The program of the venv with sample_hatch (the hatch_venv fixture): prints "5\n", and the hook
# counts {"sample_hatch.add": 1}.
HATCH_PROGRAM = "import sample_hatch\nprint(sample_hatch.add(2, 3))\n"

# The hook's entries on sys.meta_path, first to last: "stand-in" (the module
# _telly_autoinst_bootstrap, a finder until a watched module is imported) or "WatchFinder".
KINDS = ("[k for k in (('stand-in' if getattr(f, 'telly_autoinst_gate', False) else type(f).__name__)"
         " for f in sys.meta_path) if k in ('stand-in', 'WatchFinder')]")
# Prints whether the hook is in place.
PROBE = f"import sys; print(bool({KINDS}))"
# Prints the watched top-level names, sorted ([] with no hook). The stand-in wakes for it: it is
# asked for a module no package has, as at a first import from outside the standard library.
WATCHED = ("import sys; f = [f for f in sys.meta_path if getattr(f, 'telly_autoinst_gate', False)"
           " or type(f).__name__ == 'WatchFinder']; f and f[0].find_spec('telly_autoinst_no_such_module');"
           " print(sorted(f[0].watched) if f else [])")
