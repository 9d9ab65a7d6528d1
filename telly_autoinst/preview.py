"""What the ``show`` command prints, as data: each known project's envelope and the reports waiting in the spool.

Kept out of ``pipeline``, which every watched run imports: a warm run would load this code for nothing.
"""

import json

from . import _env, consent, spool
from ._http import reports_url
from .pipeline import capture, default_dir
from .report import assemble
from .settings import process_settings


def preview(environ=None):
    """Each known project's envelope and the reports waiting in the spool (see the module docstring).

    A new process has counted nothing yet, so each project's report is built with empty
    ``stats``: everything else in it is exactly what this user's reports carry.
    """
    process = process_settings(environ=environ)
    envelopes = []
    for project_id, project in sorted(consent.known_projects().items()):
        if project is None:
            continue
        decision = consent.decide(project, process, environ, show_notice=False)
        envelopes.append({
            "project_id": project_id,
            "would_send": decision.send,
            "why": decision.reason,
            "endpoint": project.collector_url(process),
            "report": assemble(capture(project, {}, trigger="manual", salt_type=process.salt_type,
                                       plaintext_accepted=process.accept_level2_plaintext)),
        })
    directory = default_dir(process.spool_dir)
    queued = []
    for name in spool.entries(directory) if directory else []:
        try:
            if spool.is_counts(name):
                # Counts the sender has yet to build into a report: shown as it will build it.
                entry = spool.read_counts(directory, name)
                queued.append({"file": name, "url": reports_url(entry["url"]), "attempts": 0,
                               "report": assemble(entry["captured"])})
                continue
            header, body = spool.read(directory, name)
            queued.append({"file": name, "url": header["url"], "attempts": header["attempts"],
                           "report": json.loads(body)})
        except (OSError, ValueError):
            _env.swallowed(f"reading spool entry {name}")
            continue
    return {"projects": envelopes, "queued": queued, "spool": directory}
