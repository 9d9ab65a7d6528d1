"""Immutable records, tuples with named fields, for settings, declarations and selection targets.

``collections.namedtuple`` compiles a ``__new__`` from source text for every type it makes:
on the first watched import, making the client's five types cost more than everything else
settings, discovery and selection do there (issue 8). These records are put together from
plain functions and ``operator.itemgetter`` instead, with the same tuple behaviour (equality,
hashing, unpacking, pickling) and the part of namedtuple's API the client uses: positional or
keyword construction, trailing defaults, ``_fields`` and ``_replace``.
"""

from operator import itemgetter

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_MISSING = object()


def record(typename, field_names, defaults=()) -> "Any":  # Any: a type checker cannot see the fields
    """A tuple subclass named ``typename`` with ``field_names`` (a list, or one space-separated
    string); ``defaults`` apply to the last fields, as with namedtuple."""
    fields = tuple(field_names.split() if isinstance(field_names, str) else field_names)
    defaults = tuple(defaults)
    count = len(fields)
    first_default = count - len(defaults)
    positions = {name: i for i, name in enumerate(fields)}

    def __new__(cls, *args, **kwargs):
        given = len(args)
        if not kwargs and first_default <= given <= count:  # the common case, kept short
            return tuple.__new__(cls, args + defaults[given - first_default:])
        if given > count:
            raise TypeError(f"{typename}() takes {count} arguments but {given} were given")
        values = list(args) + [_MISSING] * (count - given)
        for name, value in kwargs.items():
            position = positions.get(name)
            if position is None:
                raise TypeError(f"{typename}() got an unexpected keyword argument {name!r}")
            if values[position] is not _MISSING:
                raise TypeError(f"{typename}() got multiple values for argument {name!r}")
            values[position] = value
        for position, value in enumerate(values):
            if value is _MISSING:
                if position < first_default:
                    raise TypeError(f"{typename}() missing required argument {fields[position]!r}")
                values[position] = defaults[position - first_default]
        return tuple.__new__(cls, values)

    def _replace(self, **changes):
        """A copy with ``changes`` applied."""
        return type(self)(**dict(zip(fields, self), **changes))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{n}={v!r}' for n, v in zip(fields, self))})"

    def __getnewargs__(self):
        return tuple(self)

    namespace = {"__slots__": (), "_fields": fields, "__new__": __new__, "_replace": _replace,
                 "__repr__": __repr__, "__getnewargs__": __getnewargs__}
    for position, name in enumerate(fields):
        namespace[name] = property(itemgetter(position))
    return type(typename, (tuple,), namespace)
