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

Two fixes to stock moto's memory and speed under many DynamoDB transactions (see
install_moto_patches): it kept every model object it ever created, and it copied
the whole table once per operation of every TransactWriteItems.
"""

from __future__ import annotations

import argparse
import copy
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


def install_moto_patches() -> None:
    """Keep moto's memory flat and its transactions cheap; behaviour is unchanged.

    1. moto's BaseModel.__new__ appends every instance to a class-level list (for its
       /moto-api/ introspection, which nothing here uses). TransactWriteItems deep-copies
       the table as a rollback snapshot, so every transaction added a whole table's worth
       of Items to those lists for good: 1,000 transactions on a 2,000-item table held
       several GB. New instances are no longer tracked.
    2. The snapshot is taken once per *operation* of the transaction, each a deep copy of
       the whole table. All are taken before any operation applies, so they are identical:
       one per table and transaction is kept and reused. Only `items` changes under a
       transaction, so the snapshot deep-copies the items and shares the rest.
    """
    from moto.core.common_models import BaseModel
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    BaseModel.__new__ = staticmethod(lambda cls, *args, **kwargs: object.__new__(cls))  # type: ignore[method-assign]

    snapshots = threading.local()

    def table_deepcopy(self: Table, memo: dict[int, Any]) -> Table:
        cache = getattr(snapshots, "cache", None)
        if cache is not None and id(self) in cache:
            return cache[id(self)]
        snapshot = copy.copy(self)
        snapshot.items = copy.deepcopy(self.items, memo)
        if cache is not None:
            cache[id(self)] = snapshot
        return snapshot

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        snapshots.cache = {}
        try:
            return original(self, transact_items)
        finally:
            snapshots.cache = None

    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


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

    install_moto_patches()
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
