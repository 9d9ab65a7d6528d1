"""The collector's version and its pin on the client, both read from the client's one version line.

The version is written once, in ``telly_autoinst/__init__.py`` at the repository's root. A build
from the repository reads it there; a build from the collector's own sdist (where the client's
tree is absent) reads it back from the sdist's ``PKG-INFO``, which the first build wrote.
"""

import re
from pathlib import Path

from hatchling.metadata.plugin.interface import MetadataHookInterface

_CLIENT_INIT = Path("..", "telly_autoinst", "__init__.py")


def _version(root):
    client_init = Path(root, _CLIENT_INIT)
    if client_init.is_file():
        match = re.search(r'^__version__ = "([^"]+)"$', client_init.read_text(encoding="utf-8"), re.M)
    else:
        match = re.search(r"^Version: (\S+)$", Path(root, "PKG-INFO").read_text(encoding="utf-8"), re.M)
    if match is None:
        raise RuntimeError(f"no version found beside {root}: expected {_CLIENT_INIT} or PKG-INFO")
    return match.group(1)


class CollectorMetadataHook(MetadataHookInterface):
    """Sets ``version`` and pins ``telly_autoinst`` to exactly that version."""

    PLUGIN_NAME = "custom"

    def update(self, metadata):
        version = _version(self.root)
        metadata["version"] = version
        # The collector validates the client's reports field by field: it is released in lockstep.
        metadata["dependencies"] = [f"telly_autoinst=={version}", *self.config.get("dependencies", [])]
