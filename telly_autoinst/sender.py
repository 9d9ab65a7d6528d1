"""The detached process that drains the spool: bounded retries with backoff, Retry-After honoured, one at a time.

Started by ``pipeline.spawn`` as ``python -I -S`` (no ``site``, so no ``.pth`` and no hook in the
sender itself; nothing from the host's directory or ``PYTHONPATH``; see ``_launch.sender_argv``)
in ``/``, in a new session, with stdio on /dev/null and no inherited descriptors: the
host's exit never waits for it, a Ctrl-C in the host's terminal never reaches it, and it can
never write into the host's pipes. It builds the reports of the counts the hosts queued
(``*.counts`` entries, see ``spool``) before sending them, so no host pays for building one.
"""

import os
import sys
import time

from . import _env, spool
from ._contract import RETRY_ATTEMPTS_PER_RUN as ATTEMPTS_PER_RUN
from ._contract import RETRY_BACKOFF_BASE_SEC as BACKOFF_BASE_SEC
from ._contract import RETRY_MAX_ATTEMPTS as MAX_ATTEMPTS
from ._contract import RETRY_MAX_NOT_BEFORE_SEC as _MAX_NOT_BEFORE_SEC
from ._contract import RETRY_MAX_WAIT_SEC as MAX_WAIT_SEC
from ._contract import RETRY_REQUEST_TIMEOUT_SEC as REQUEST_TIMEOUT_SEC
from ._contract import RETRY_RUN_DEADLINE_SEC as RUN_DEADLINE_SEC
from ._http import post, reports_url
from ._statefile import dir_refusal

# The retry policy is the shared contract's (the Node sender keeps the same): attempts within one
# run and over a report's life; a Retry-After longer than MAX_WAIT_SEC is not waited for (the
# report waits in the spool for a later run); one wall-clock budget, RUN_DEADLINE_SEC, for a whole
# run (every pass, request, wait and read), so a dead, slow or hostile endpoint can never keep the
# sender alive, or the spool locked, for longer; REQUEST_TIMEOUT_SEC when the spawner passes none
# (it passes TELLY_HTTP_TIMEOUT).

class _DeadlineExceeded(BaseException):
    """Raised by the sender's SIGALRM at its run deadline, from wherever it is blocked.

    A BaseException, so that no ``except Exception`` in requests or urllib3 can swallow it.
    """


class _Consent:
    """Asks again, for each queued report, whether it may still leave: the user may have opted out
    (``optout PROJECT_ID``, ``disable``, TELLY_DISABLE/DO_NOT_TRACK) since it was queued; and cuts
    the Level II a counts entry asks for down to what the user's config and environment allow now."""

    def __init__(self):
        from . import consent
        from .errors import ConfigError
        from .settings import process_settings, read_user_config

        self._consent = consent
        try:
            self._user_config = read_user_config()
            self._process = process_settings(user_config=self._user_config)
        except ConfigError:
            # A broken user config must not make the sender more permissive than the
            # environment alone: TELLY_OPTIN still counts.
            _env.swallowed("the sender reading the user config")
            self._user_config = {}
            self._process = process_settings(user_config={})

    def refusal(self, header):
        """Why the entry with this header (a report's, or a counts entry) must not leave, or None."""
        return self._consent.refusal_at_send(header.get("project_id"), bool(header.get("optin")), self._process)

    def limit(self, captured):
        """``captured`` with Level II kept only where the live environment and user config agree now.

        A spool entry is data, not authority: whoever could write one could claim any agreement.
        So plain-text values need TELLY_LEVEL2_PLAINTEXT (or the config's
        ``accept_level2_plaintext``) in force in this process, and the hashes need the user's
        ``level2`` not turned off for the project; the entry's own flags can only take away.
        Cheap: no discovery, only the settings already read.
        """
        project_id = captured.get("project_id") if isinstance(captured, dict) else None
        if not isinstance(project_id, str) or not isinstance(captured.get("level2"), bool):
            return captured  # malformed: report.assemble refuses it
        from .errors import ConfigError
        from .settings import project_settings

        try:
            # The user's layers over a table that allows everything: what the user allows.
            live = project_settings({"project_id": project_id, "level2": True}, "the sender",
                                    default_packages=("-",), user_config=self._user_config)
            level2 = live.level2
        except ConfigError:
            _env.swallowed(f"the sender reading the user's Level II settings for {project_id}")
            level2 = False
        limited = dict(captured)
        limited["level2"] = captured["level2"] and level2
        if limited.get("plaintext_accepted") is True and not (level2 and self._process.accept_level2_plaintext):
            _env.note(f"queued counts for {project_id!r} ask for Level II in plain text, which this user's "
                      "environment and config do not accept now: sent without it")
            limited["plaintext_accepted"] = False
        return limited


def _drop(directory, name, reason, project_id):
    try:
        os.unlink(os.path.join(directory, name))
    except FileNotFoundError:
        return
    spool.record_loss(reason, project_id, directory)


def _build(directory, name, consent):
    """Turn a counts entry into the report built from it: (the report's entry name or None, whether it was dropped).

    Consent is asked first, so no report is built for a project the user opted out of since.
    An entry that cannot be read back or built is dropped and recorded, never retried.
    """
    try:
        entry = spool.read_counts(directory, name)
    except FileNotFoundError:
        return None, False
    except (OSError, ValueError) as exc:
        _env.note(f"spool entry {name} is corrupt: {exc}")
        _drop(directory, name, "spool-corrupt", None)
        return None, True
    project_id = entry["project_id"]
    refusal = consent.refusal(entry)
    if refusal is not None:
        _env.note(f"queued counts {name} for {project_id!r} not sent: {refusal}")
        _drop(directory, name, "opted-out", project_id)
        return None, True
    from .report import assemble, encode

    try:
        body = encode(assemble(consent.limit(entry["captured"])))
    except ValueError as exc:
        _env.note(f"spool entry {name} is corrupt: {exc}")
        _drop(directory, name, "spool-corrupt", project_id)
        return None, True
    except Exception as exc:  # a bug in building must not wedge the queue behind this entry
        _env.swallowed(f"building the report of {name}")
        _drop(directory, name, f"build-error:{type(exc).__name__}", project_id)
        return None, True
    try:
        return spool.replace_counts(directory, name, reports_url(entry["url"]), project_id, body,
                                    optin=entry["optin"]), False
    except OSError:  # e.g. a full disk: the counts stay queued for a later run
        _env.swallowed(f"queueing the report built from {name}")
        return None, False


def _merge(directory):
    """Merge the queued counts the collector would publish alike (``report.merge_key``): one report, one request.

    A short program run many times between two senders leaves one counts entry per run; summed,
    they cost one build and one POST instead of one per run, and the published figures are the
    same (the collector sums a user's reports per day before publishing anything).
    """
    from .report import merge, merge_key

    groups: dict = {}
    gone: set = set()
    for name in spool.entries(directory):
        if not spool.is_counts(name) or name in gone:
            continue
        try:
            entry = spool.read_counts(directory, name)
        except (OSError, ValueError):
            continue  # recorded by _build when its turn comes
        # A sender stopped between writing a merged entry and removing its parts left them: they
        # are in the merged entry already.
        gone.update(spool.forget_merged(directory, entry))
        key = merge_key(entry["captured"])
        if key is not None:
            groups.setdefault((entry["url"], entry["project_id"], entry["optin"], key), []).append((name, entry))
    for members in groups.values():
        if len(members) < 2:
            continue
        entry = {key: value for key, value in members[0][1].items() if key != "merged"}
        entry["captured"] = merge([member["captured"] for _name, member in members])
        try:
            spool.merge_counts(directory, [name for name, _entry in members], entry)
        except OSError:  # e.g. a full disk: the entries stay as they are, each built on its own
            _env.swallowed("merging queued counts")


def _attempt(directory, name, header, body, timeout, sleep, deadline):
    """Try one report up to ATTEMPTS_PER_RUN times; returns True when it left the spool."""
    for attempt in range(ATTEMPTS_PER_RUN):
        header["attempts"] = header.get("attempts", 0) + 1
        try:
            outcome = post(header["url"], body, timeout, deadline)
        except _DeadlineExceeded:
            # Cut off mid-request: count the attempt, so an endpoint that never answers cannot
            # hold this report (and every report behind it) for ever.
            header["not_before"] = time.time() + BACKOFF_BASE_SEC * (2 ** attempt)
            spool.rewrite(directory, name, header, body)
            raise
        if outcome.delivered:
            os.unlink(os.path.join(directory, name))
            return True
        if not outcome.retry or header["attempts"] >= MAX_ATTEMPTS:
            reason = outcome.reason if not outcome.retry else f"gave-up:{outcome.reason}"
            _drop(directory, name, reason, header.get("project_id"))
            return True
        wait = outcome.retry_after
        if wait is None:
            # Exponential backoff with jitter, so senders of many users do not retry in step.
            wait = BACKOFF_BASE_SEC * (2 ** attempt) * (0.5 + _uniform())
        if wait > MAX_WAIT_SEC or time.monotonic() + wait > deadline or attempt == ATTEMPTS_PER_RUN - 1:
            header["not_before"] = time.time() + min(wait, _MAX_NOT_BEFORE_SEC)
            spool.rewrite(directory, name, header, body)
            return False
        sleep(wait)
    return False


def drain(directory, timeout=REQUEST_TIMEOUT_SEC, sleep=time.sleep, deadline=None):
    """Send every due report in the spool, oldest first; returns (sent_or_dropped, left) counts.

    Queued counts are built into their report as their turn comes (see :func:`_build`).

    ``deadline`` is a ``time.monotonic()`` value (default: RUN_DEADLINE_SEC from now); nothing
    is started after it and every request is clipped to it. Each report's consent is checked
    again first, and a refused one is dropped as ``opted-out``. Returns (0, -1) without doing
    anything when another sender holds the lock.
    """
    if not os.path.isdir(directory) or dir_refusal(directory) is not None:
        return 0, 0  # a spool someone else can write holds nothing this user may send
    fd = spool.try_lock(directory)
    if fd is None:
        return 0, -1
    spool.stamp_sender(directory)
    done = 0
    deadline = time.monotonic() + RUN_DEADLINE_SEC if deadline is None else deadline
    try:
        for _name, project_id, reason in spool.enforce_caps(directory):
            spool.record_loss(reason, project_id, directory)
        consent = _Consent()
        _merge(directory)
        # A down endpoint stays down for every report: stop trying a URL at its first postponement.
        failed_urls, up_urls, postponed = set(), set(), []
        handled = set()  # a report built from counts is handled at once, not again when listed
        for name in spool.entries(directory):
            if time.monotonic() > deadline:
                break
            if spool.is_counts(name):
                built, dropped = _build(directory, name, consent)
                done += dropped
                if built is None:
                    continue
                name = built
            if name in handled:
                continue
            handled.add(name)
            try:
                header, body = spool.read(directory, name)
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                # One bad entry must never wedge the queue: record it, drop it, go on.
                _env.note(f"spool entry {name} is corrupt: {exc}")
                _drop(directory, name, "spool-corrupt", None)
                continue
            refusal = consent.refusal(header)
            if refusal is not None:
                _env.note(f"queued report {name} for {header.get('project_id')!r} not sent: {refusal}")
                _drop(directory, name, "opted-out", header.get("project_id"))
                done += 1
                continue
            url = header["url"]
            if url in failed_urls:
                continue
            if header["not_before"] > time.time():
                postponed.append((name, header, body))
                continue
            if _attempt(directory, name, header, body, timeout, sleep, deadline):
                done += 1
                up_urls.add(url)
            else:
                failed_urls.add(url)
        # The endpoint accepted a newer report, so it is back: older ones waiting out a backoff go now.
        for name, header, body in postponed:
            if header["url"] in up_urls - failed_urls and time.monotonic() < deadline:
                if _attempt(directory, name, header, body, timeout, sleep, deadline):
                    done += 1
                else:
                    failed_urls.add(header["url"])
    finally:
        os.close(fd)  # closing the descriptor releases the flock
    return done, len(spool.entries(directory))


def _queued_since(directory, started_ns):
    """Whether a report was queued after ``started_ns`` (its name starts with its creation time)."""
    for name in spool.entries(directory):
        try:
            if int(name.split("-", 1)[0]) >= started_ns:
                return True
        except ValueError:
            continue
    return False


def _uniform():
    """A float in [0, 1) for the backoff's jitter, without importing ``random`` (hashlib and more)."""
    return int.from_bytes(os.urandom(4), "big") / 2 ** 32


def _on_alarm(signum, frame):
    raise _DeadlineExceeded()


def _arm_deadline(seconds):
    """Backstop for the run deadline: SIGALRM interrupts whatever blocks (a header trickling in
    byte by byte resets every per-read timeout). The sender is its own process, so the signal
    is ours to take."""
    import _signal  # type: ignore[import-not-found]  # the C module: ``signal`` builds enums at import

    if hasattr(_signal, "setitimer"):
        _signal.signal(_signal.SIGALRM, _on_alarm)
        _signal.setitimer(_signal.ITIMER_REAL, seconds)


def main(argv=None, detached=False):
    """Entry point of the detached process: ``DIRECTORY [TIMEOUT [DEADLINE]]``; never prints, always exits 0.

    ``detached``: this is the sender's own process, so the run deadline's SIGALRM is ours to arm.
    """
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv:
            directory = argv[0]
            timeout = float(argv[1]) if len(argv) > 1 else REQUEST_TIMEOUT_SEC
            run_sec = float(argv[2]) if len(argv) > 2 else RUN_DEADLINE_SEC
            deadline = time.monotonic() + run_sec
            if detached:
                _arm_deadline(run_sec + 1.0)  # after the cooperative deadline, which leaves the spool tidy
            for _ in range(10):
                started = time.time_ns()
                _done, left = drain(directory, timeout=timeout, deadline=deadline)
                # A process that queued a report while this sender held the lock did not start
                # another sender (see spawn): pick its report up before leaving.
                if left <= 0 or not _queued_since(directory, started) or time.monotonic() > deadline:
                    break
    except (Exception, _DeadlineExceeded):
        _env.swallowed("the sender")
    return 0


if __name__ == "__main__":
    sys.exit(main(detached=True))
