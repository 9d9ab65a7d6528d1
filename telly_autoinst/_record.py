"""Immutable records, tuples with named fields, for settings, declarations and selection targets.

``collections.namedtuple`` compiles a ``__new__`` from source text for every type it makes:
on the first watched import, making the client's five types cost more than everything else
settings, discovery and selection do there (issue 8). These records are put together from
plain functions and ``operator.itemgetter`` instead, with the same tuple behaviour (equality,
hashing, unpacking, pickling) and the part of namedtuple's API the client uses: positional or
keyword construction, trailing defaults, ``_fields`` and ``_replace``.

The settings record types are made here too (:func:`types_for`), from their fields: by ``settings``
from the contract, or by a warm run from the warm state, which never imports ``settings``.
"""

from _operator import itemgetter  # the C module: operator is one import more

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_MISSING = object()


def record(typename, field_names, defaults=(), members=None) -> "Any":  # Any: a type checker cannot see the fields
    """A tuple subclass named ``typename`` with ``field_names`` (a list, or one space-separated
    string); ``defaults`` apply to the last fields, as with namedtuple. ``members``: more of the
    class's attributes (methods, a docstring), so that a record with methods is one class."""
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
    if members:
        namespace.update(members)
    return type(typename, (tuple,), namespace)


# -- the settings record types ------------------------------------------------------------------
#
# A warm run (``finder``, with ``warmstate``) rebuilds this process's settings from plain values
# without importing ``settings`` and the contract behind it, which cost more than everything else
# the warm state saves there. Both ask :func:`types_for`, which makes one pair of types per list of
# fields and process, so a process that imports ``settings`` later still holds one
# ``ProjectSettings`` type, the one ``settings`` names (pickling finds it there).

# The fields a project's record has after its settings: where its table came from, its
# distribution, and whether it is installed editable from a checkout.
PROJECT_EXTRA = ("source", "distribution", "editable")

_made: dict = {}  # (project fields, process fields) -> (ProjectSettings, ProcessSettings)


def types_for(project_fields, process_fields):
    """``(ProjectSettings, ProcessSettings)`` with these fields (the project's end with PROJECT_EXTRA)."""
    key = (tuple(project_fields), tuple(process_fields))
    made = _made.get(key)
    if made is None:
        made = _made[key] = _make(*key)
    return made


def _make(project_fields, process_fields):
    # One class per type, its methods given to record(): a class costs about 0.1M instructions
    # to make, and a warm run makes these at its first watched import.
    project = record("ProjectSettings", project_fields, defaults=(None, False), members={
        "__doc__": """Settings of one watched project, after layering; ``source`` says where the table came
        from, and ``editable`` whether the package is installed editable from a checkout.""",
        "collector_url": _collector_url})
    process = record("ProcessSettings", process_fields, members={
        "__doc__": "How this user's process reports: never influenced by a package's own table."})
    for made in (project, process):
        made.__module__ = "telly_autoinst.settings"  # where pickle and people look for them
    return project, process


def _collector_url(self, process):
    """The collector base URL: TELLY_HTTP_SERVER, else `endpoint`, else the region's endpoint."""
    if process.http_server:
        return process.http_server
    if self.endpoint:
        return self.endpoint
    return dict(self.endpoints).get(self.region)
