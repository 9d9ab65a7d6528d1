"""Which class an instantiation is counted under, seen from inside a package ``__init__``.

Engines observe instantiation through the package's ``__init__`` functions, which also run for
subclasses and for ``super().__init__()`` chains. For one ``Cls(...)`` call exactly one count is
wanted, under the right key:

* the ``__init__`` that counts is the *first package initializer* in ``type(self).__mro__``
  (so ``super().__init__()`` into a base's initializer counts nothing more);
* the key is the nearest *counted* class in ``type(self).__mro__``: ``Sub(Base)`` without an
  ``__init__`` of its own counts as ``Sub``; a user's subclass outside the package, a private
  or excluded class count as their nearest counted base.

Both answers are cached per type: strongly for counted classes (they live as long as their
module), weakly for other types (a user's dynamically created classes must stay collectable).

Known limit: an explicit ``Cls.__init__(obj, ...)`` on an existing object looks exactly like an
instantiation from inside ``__init__``, and is counted as one.
"""

import weakref

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_NOTHING = (None, None)


class Instantiations:
    """Counted classes and the per-type resolution used by ``__init__`` observers.

    ``token_of(init)`` tells whether a value found in a class ``__dict__['__init__']`` is a
    package initializer this engine observes, and returns its token (what the observer compares
    against: the original function for wrapt, the code object for sys.monitoring).
    """

    def __init__(self, token_of):
        self._token_of = token_of
        self._ticks = {}  # counted class -> tick
        self._resolved: dict[type, Any] = {}  # counted class -> (token, tick)
        self._others: weakref.WeakKeyDictionary[type, Any] = weakref.WeakKeyDictionary()  # other type -> (token, tick)
        # The per-call path reads these bound methods; caches are cleared in place, never replaced.
        self.cached = self._resolved.get

    def add(self, cls, tick):
        """Count instantiations of ``cls`` with ``tick``; earlier resolutions may change, so forget them."""
        self._ticks[cls] = tick
        self.forget()

    def counts(self, cls):
        """Whether instantiations of ``cls`` are counted already (instrumenting is idempotent)."""
        return cls in self._ticks

    def forget(self):
        """Drop cached resolutions (a new class or initializer may change them)."""
        self._resolved.clear()
        self._others.clear()

    def resolve(self, cls):
        """``(token, tick)`` for an instance of ``cls``; ``(None, None)`` when nothing counts it.

        Runs inside the host's ``__init__`` call, so it never raises: whatever cannot be
        resolved is simply not counted.
        """
        try:
            return self._others[cls]
        except Exception:  # KeyError, or a type that cannot be weakly referenced
            pass
        entry = _NOTHING
        try:
            mro = cls.__mro__
            tick = next((self._ticks[k] for k in mro if k in self._ticks), None)
            if tick is not None:
                for klass in mro:
                    token = self._token_of(vars(klass).get("__init__"))
                    if token is not None:
                        entry = (token, tick)
                        break
            if cls in self._ticks:
                self._resolved[cls] = entry
            else:
                self._others[cls] = entry
        except Exception:  # e.g. not weak-referenceable: resolved again next time
            pass
        return entry
