"""What our local test servers (openai_server.py, hubserver.py) share."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print connection errors.

    A client that gives up (the timeout tests) leaves its handler writing to a closed socket, sometimes after the
    test has ended; socketserver would print that traceback to stderr, where a later test that captures stderr reads
    it. Other errors are still printed.
    """

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # broken pipes, resets, timeouts: the client left
            super().handle_error(request, client_address)
