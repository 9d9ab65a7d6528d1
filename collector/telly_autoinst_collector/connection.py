"""HTTP connections with deadlines: waiting for a request, its headers and its body are each bounded.

uvicorn bounds only the wait between keep-alive requests, and only after a first response: a
socket that never sends a byte, a header sent one byte a minute, or a body that stops halfway
would each stay open (holding its memory and a file descriptor) forever. This protocol closes
the connection when one of these phases outlives its deadline. Closing is what frees the
request's share of the bytes in flight: the endpoint then sees a disconnect and returns.
"""

import dataclasses

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclasses.dataclass(frozen=True)
class Deadlines:
    """Seconds each phase of a connection may last; set from `collector serve`'s timeout options."""

    idle: float = 30.0
    header: float = 30.0
    body: float = 30.0


def protocol_with(deadlines):
    """uvicorn's httptools protocol class, bound to ``deadlines`` (uvicorn takes a class)."""

    class _Protocol(_DeadlineProtocol):
        _deadlines = deadlines

    return _Protocol


class _DeadlineProtocol(HttpToolsProtocol):
    """One deadline per connection, moved at each phase: idle -> headers -> body -> (app) -> idle.

    Moving it later only stores a time: a small request passes all three phases in one read, and
    re-arming a timer three times per request cost more than the rest of this class. The timer
    wakes at the deadline it was armed for and re-arms itself if the deadline has moved later.
    """

    _deadlines = Deadlines()
    _deadline = None  # loop time at which the current phase ends; None while the app runs
    _deadline_timer = None

    def connection_made(self, transport):
        super().connection_made(transport)
        # Until the first byte of a request (uvicorn's keep-alive timer covers later requests).
        self._move(self._deadlines.idle)

    def on_message_begin(self):
        super().on_message_begin()
        self._move(self._deadlines.header)  # the whole header, however slowly it trickles in

    def on_headers_complete(self):
        super().on_headers_complete()
        self._move(self._deadlines.body)

    def on_message_complete(self):
        super().on_message_complete()
        self._deadline = None  # the request is read; the app's own time is bounded by its queues

    def connection_lost(self, exc):
        self._deadline = None
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        super().connection_lost(exc)

    def _move(self, seconds):
        self._deadline = self.loop.time() + seconds
        timer = self._deadline_timer
        if timer is None or self._deadline < timer.when():  # a shorter phase than the one armed
            if timer is not None:
                timer.cancel()
            self._deadline_timer = self.loop.call_at(self._deadline, self._expire)

    def _expire(self):
        self._deadline_timer = None
        if self._deadline is None or self.transport.is_closing():
            return
        if self.loop.time() < self._deadline:
            self._deadline_timer = self.loop.call_at(self._deadline, self._expire)
            return
        self.transport.close()
