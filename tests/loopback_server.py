"""A threaded HTTP server on 127.0.0.1 for the tests' stand-ins of vendor APIs whose servers cannot run here: it
binds a free port at construction (``url``), serves while the ``with`` block runs, and is shut down at its end."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class LoopbackServer:
    """Subclasses give ``_handler()`` (a BaseHTTPRequestHandler class) and call ``__init__`` after their own fields."""

    def __init__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self):
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
