"""The settings record types, made from their fields: by ``settings`` from the contract, or from the warm state.

A warm run (``control``, with ``warmstate``) rebuilds this process's settings from plain values
without importing ``settings`` and the contract behind it, which cost more than everything else
the warm state saves there. Both ask :func:`types_for`, which makes one pair of types per list of
fields and process, so a process that imports ``settings`` later still holds one
``ProjectSettings`` type, the one ``settings`` names (pickling finds it there).
"""

from ._record import record

# Names for annotations only: never imported at run time (typing would cost an import).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
    project_base: Any = record("ProjectSettings", project_fields, defaults=(None, False))
    process_base: Any = record("ProcessSettings", process_fields)

    class ProjectSettings(project_base):
        """Settings of one watched project, after layering; ``source`` says where the table came from,
        and ``editable`` whether the package is installed editable from a checkout."""

        __slots__ = ()

        def collector_url(self, process):
            """The collector base URL: TELLY_HTTP_SERVER, else `endpoint`, else the region's endpoint."""
            if process.http_server:
                return process.http_server
            if self.endpoint:
                return self.endpoint
            return dict(self.endpoints).get(self.region)

    class ProcessSettings(process_base):
        """How this user's process reports: never influenced by a package's own table."""

        __slots__ = ()

    for made in (ProjectSettings, ProcessSettings):
        made.__module__ = "telly_autoinst.settings"  # where pickle and people look for them
        made.__qualname__ = made.__name__
    return ProjectSettings, ProcessSettings
