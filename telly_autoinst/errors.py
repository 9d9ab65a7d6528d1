"""The client's exception tree.

    TellyError
     +-- ConfigError      a [tool.telly] table, telly.toml or user config is malformed
     +-- TransportError   a report could not be delivered (always caught inside the client)

None of these ever reaches a host program: the hook, wrapper and sender boundaries catch them.
They exist so that ``--dry-run`` and the CLI can print a message that names the setting to fix.
"""


class TellyError(Exception):
    """Base of every error raised by telly_autoinst."""


class ConfigError(TellyError, ValueError):
    """A configuration table or value is malformed; the message names the file and key."""


class TransportError(TellyError, OSError):
    """A report could not be delivered; ``reason`` is recorded with the loss."""

    def __init__(self, message, reason="error"):
        super().__init__(message)
        self.reason = reason
