"""Serve moto (every mocked AWS service) with ONE global lock around each request.

Stock moto_server runs requests on threads without making each request atomic:
two concurrent conditional UpdateItems on DynamoDB can both pass their condition.
Real DynamoDB makes every single-item write atomic, and the platform's race tests
depend on that, so this server holds one process-wide lock from the moment a
request starts (before its body is read) until its whole response body has been
produced. The server itself stays threaded, so slow clients don't block accept().

    python moto_locked.py --port-file FILE [--host 127.0.0.1] [--port 0]

With --port 0 (the default) the kernel picks a free port; the chosen port is
written to --port-file once the socket is bound and listening.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterable

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class GlobalLockMiddleware:
    """WSGI middleware that runs each whole request under one threading.Lock."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args(argv)

    app = GlobalLockMiddleware(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    port = server.server_port
    # moto builds some URLs (SQS queue URLs, ...) from MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)

    def stop(signum: int, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    print(f"moto_locked: serving on http://{args.host}:{port} (one global request lock)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
