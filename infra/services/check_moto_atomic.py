"""Check that a DynamoDB endpoint makes conditional writes atomic under concurrency.

50 threads, released together, each try one conditional decrement
(`SET stock = stock - 1` if `stock > 0`) of an item whose stock is 20.
Exactly 20 must succeed and the stock must end at 0; anything else means the
server lets concurrent conditional writes race (stock moto_server does).

    python check_moto_atomic.py [ENDPOINT] [--rounds N]

ENDPOINT defaults to $PROMO_TEST_DYNAMODB_ENDPOINT. Exit 0 when every round is
exact, 1 otherwise. Needs boto3 (it is in the tools venv).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import uuid

import boto3
from botocore.config import Config

STOCK = 20
WORKERS = 50


def one_round(client, table: str, round_no: int) -> bool:
    key = {"pk": {"S": f"campaign#{round_no}"}, "sk": {"S": "stock"}}
    client.put_item(TableName=table, Item={**key, "stock": {"N": str(STOCK)}})
    barrier = threading.Barrier(WORKERS)
    ok = 0
    rejected = 0
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        nonlocal ok, rejected
        barrier.wait()
        try:
            client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET stock = stock - :one",
                ConditionExpression="stock > :zero",
                ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}},
            )
            with lock:
                ok += 1
        except client.exceptions.ConditionalCheckFailedException:
            with lock:
                rejected += 1
        except Exception as e:  # noqa: BLE001 - report anything else
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = int(client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["stock"]["N"])
    good = ok == STOCK and rejected == WORKERS - STOCK and final == 0 and not errors
    print(
        f"round {round_no}: {ok} succeeded, {rejected} rejected, final stock {final}"
        f"{', errors: ' + '; '.join(errors[:3]) if errors else ''} -> {'OK' if good else 'NOT ATOMIC'}"
    )
    return good


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("endpoint", nargs="?", default=os.environ.get("PROMO_TEST_DYNAMODB_ENDPOINT"))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.endpoint:
        print("no endpoint: pass one or set PROMO_TEST_DYNAMODB_ENDPOINT", file=sys.stderr)
        return 2
    client = boto3.client(
        "dynamodb",
        endpoint_url=args.endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(max_pool_connections=WORKERS, retries={"max_attempts": 1}),
    )
    table = f"atomic-check-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        results = [one_round(client, table, i) for i in range(1, args.rounds + 1)]
    finally:
        client.delete_table(TableName=table)
    if all(results):
        print(f"atomic: {args.rounds} of {args.rounds} rounds gave exactly {STOCK} of {WORKERS}")
        return 0
    print(f"NOT ATOMIC: {results.count(False)} of {args.rounds} rounds were wrong", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
