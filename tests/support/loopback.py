"""A real HTTP collector stand-in on 127.0.0.1, scripted per request: status, Retry-After, delay, reset."""

import gzip
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Received:
    """One request as the server saw it."""

    def __init__(self, path, headers, raw):
        self.path = path
        self.headers = headers
        self.raw = raw
        self.time = time.time()

    @property
    def body(self):
        """The body after gunzip, exactly as the client built it."""
        if self.headers.get("Content-Encoding") == "gzip":
            return gzip.decompress(self.raw)
        return self.raw


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that timed out closed its end first: expected in the slow-endpoint tests.
        pass


class Loopback:
    """``script`` is a list of actions used in order (the last one repeats): ``200``, ``500``,
    ``(429, {"Retry-After": "1"})``, ``("sleep", seconds)`` or ``"reset"``."""

    def __init__(self, script=(200,), port=0):
        self.script = list(script)
        self.received = []
        self.attempts = 0
        self._lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _next(self):
        with self._lock:
            index = min(self.attempts, len(self.script) - 1)
            self.attempts += 1
            return self.script[index]

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                action = outer._next()
                if action == "reset":
                    # SO_LINGER 0 makes close() send RST: the client sees "connection reset by peer".
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if isinstance(action, tuple) and action[0] == "sleep":
                    time.sleep(action[1])
                    action = 200
                status, headers = (action if isinstance(action, tuple) else (action, {}))
                if 200 <= status < 300:
                    with outer._lock:
                        outer.received.append(Received(self.path, dict(self.headers), raw))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        return Handler

    def wait_for(self, count, timeout=30.0):
        """Wait until ``count`` reports were accepted; returns them (fewer on timeout)."""
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.received) < count:
            time.sleep(0.05)
        return list(self.received)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def dead_url():
    """A loopback URL where nothing listens (connection refused); ``Loopback(port=...)`` may bring it up later."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


class Hostile:
    """A raw HTTP server on 127.0.0.1 that reads each request, then answers with ``answer(sock)``:
    for example an endless 200 body, or a header trickled one byte per second."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            self.answer(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.sock.close()


def endless_body(conn, stop):
    """200 with a body that never ends, sent as fast as the client reads it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
    chunk = b"x" * 65536
    while not stop.is_set():
        conn.sendall(chunk)


def trickled_header(conn, stop):
    """A status line, then one header byte per second, for ever: every read timeout is reset."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stop.wait(1.0):
        conn.sendall(b"a")
