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

Fixes to stock moto's memory and speed (see install_moto_patches): it kept every
model object it ever created, it copied the whole table once per operation of every
TransactWriteItems (now an undo log of the items the transaction touches), and it
re-did per request work whose answer never changes (listing its own package,
parsing the same condition expression again).
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
from werkzeug.serving import ThreadedWSGIServer, make_server

# werkzeug listens with a backlog of 128. Requests are served one at a time (the global
# lock), so a race of several hundred concurrent clients fills that queue while the accept
# loop competes with hundreds of handler threads for the GIL, and new connections then time
# out in the SDK's connect step (3.1 s) — a failure of this stand-in, not of the code under
# test. The kernel caps this at net.core.somaxconn.
ThreadedWSGIServer.request_queue_size = 4096


def install_moto_patches() -> None:
    """Keep moto's memory flat and its transactions cheap; behaviour is unchanged.

    1. moto's BaseModel.__new__ appends every instance to a class-level list (for its
       /moto-api/ introspection, which nothing here uses). TransactWriteItems deep-copied
       the table as a rollback snapshot, so every transaction added a whole table's worth
       of Items to those lists for good: 1,000 transactions on a 2,000-item table held
       several GB. New instances are no longer tracked.
    2. TransactWriteItems deep-copied every table it touches, once per operation, before
       running the operations, and put the copies back if one failed: a transaction cost
       time proportional to the table, not to its items. It now keeps an undo log
       instead. moto's own loop reads each target item (`DynamoDBBackend.get_item`) before
       it checks that item's condition and writes it, and one transaction may touch an
       item only once, so the first read of each key is its pre-image. On any failure the
       pre-images are put back (or the item removed, if it did not exist), which is the
       state the snapshot held: a cancelled transaction still writes nothing.
    3. A Query on the table's own key sorted *every item of the table* and then kept
       those of the asked partition, so each query cost O(n log n) in the table's size.
       While such a query runs, `all_items` returns only that partition (sorted the
       same way), which is exactly what the filter kept. Index queries and scans are
       untouched.
    4. Every request listed moto's ~200 service directories (`list_of_moto_modules`,
       an isdir() each) to route itself. The list is computed once.
    5. Every condition expression was parsed on every use, three times for a
       transaction's Put (request validation, the transaction, the put it delegates
       to): a third of the time of a TransactWriteItems. The parse (an immutable tree
       of operators whose `expr(item)` only reads, and the attribute names it found) is
       memoised by (expression, names, values). A parse error is not cached: it is
       raised again, on the same request as before.
    """
    import functools
    import json

    import moto.backends
    import moto.dynamodb.models as dynamodb_models
    import moto.dynamodb.responses as dynamodb_responses
    import moto.dynamodb.models.table as dynamodb_table
    from moto.core.common_models import BaseModel
    from moto.dynamodb import comparisons
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    BaseModel.__new__ = staticmethod(lambda cls, *args, **kwargs: object.__new__(cls))  # type: ignore[method-assign]

    # Per thread (the server is threaded, requests are serialised by the global lock):
    # the running transaction's undo log, {(table name, repr of key): (key, pre-image)}.
    state = threading.local()

    def table_deepcopy(self: Table, memo: dict[int, Any]) -> Table:
        if getattr(state, "undo", None) is not None:
            # moto's whole-table snapshot: not needed, the undo log restores instead.
            return self
        snapshot = copy.copy(self)
        snapshot.items = copy.deepcopy(self.items, memo)
        return snapshot

    original_get_item = DynamoDBBackend.get_item

    def get_item(self: DynamoDBBackend, table_name: str, keys: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        item = original_get_item(self, table_name, keys, *args, **kwargs)
        undo = getattr(state, "undo", None)
        if undo is not None:
            slot = (table_name, repr(sorted(keys.items())))
            if slot not in undo:
                undo[slot] = (keys, copy.deepcopy(item))
        return item

    original_transact = DynamoDBBackend.transact_write_items

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        state.undo = {}
        try:
            return original_transact(self, transact_items)
        except BaseException:
            undo, state.undo = state.undo, None
            for (table_name, _), (keys, before) in reversed(list(undo.items())):
                table = self.get_table(table_name)
                hash_key, range_key = self.get_keys_value(table, keys)
                if before is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = before
                else:
                    table.items[hash_key] = before
            raise
        finally:
            state.undo = None

    original_query = Table.query
    original_all_items = Table.all_items

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name is not None or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        state.partition = hash_key
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            state.partition = None

    def all_items(self: Table) -> list[Any]:
        partition = getattr(state, "partition", None)
        if partition is None or self.range_key_attr is None:
            return original_all_items(self)
        items = list(self.items.get(partition, {}).values())
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    modules = tuple(moto.backends.list_of_moto_modules())
    moto.backends.list_of_moto_modules = lambda: modules  # type: ignore[assignment]

    # The operator tree, and the attribute names and values the expression uses.
    Parse = tuple[Any, tuple[str, ...], tuple[str, ...]]

    @functools.lru_cache(maxsize=4096)
    def parse_condition(expr: str | None, names: str, values: str) -> Parse:
        return parse_now(expr, json.loads(names), json.loads(values))

    def parse_now(expr: str | None, names: Any, values: Any) -> Parse:
        parser = comparisons.create_condition_expression_parser(expr, names, values)
        op = parser.parse()
        return op, tuple(parser.expr_attr_names_found), tuple(parser.expr_attr_values_found)

    def parsed(expr: str | None, names: Any, values: Any) -> Parse:
        try:
            key = (json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True))
        except (TypeError, ValueError):
            return parse_now(expr, names, values)
        return parse_condition(expr, *key)

    class ParsedCondition:
        """What moto's request validation reads from a parser, from the memoised parse."""

        def __init__(self, expr: str | None, names: Any, values: Any) -> None:
            self.op, names_found, values_found = parsed(expr, names, values)
            self.expr_attr_names_found = list(names_found)
            self.expr_attr_values_found = list(values_found)

        def parse(self) -> Any:
            return self.op

    def get_filter_expression(expr: str | None, names: Any, values: Any) -> Any:
        return parsed(expr, names, values)[0]

    dynamodb_models.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]
    dynamodb_table.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]
    dynamodb_responses.create_condition_expression_parser = ParsedCondition  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.get_item = get_item  # type: ignore[method-assign]
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


def release_lock_while_long_polling(lock: threading.Lock) -> None:
    """An SQS long poll (ReceiveMessage with WaitTimeSeconds) waits without the global lock,
    as real SQS does: held, it would stall every other request — the very SendMessage that
    should end the wait, and the acks of other consumers — for up to 20 seconds. The wait
    only sleeps and re-reads the queue; the lock is taken again before the response is built."""
    import moto.sqs.models as sqs_models

    original_wait = sqs_models.Queue.wait_for_messages

    def wait_for_messages(self: Any, timeout: int) -> None:
        lock.release()
        try:
            original_wait(self, timeout)
        finally:
            lock.acquire()

    sqs_models.Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args(argv)

    install_moto_patches()
    app = GlobalLockMiddleware(DomainDispatcherApplication(create_backend_app))
    release_lock_while_long_polling(app.lock)
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
