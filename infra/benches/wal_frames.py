"""WAL frames per commit: a plain put against an exactly-once issuance on the embedded store.

The embedded store (infra/src/embedded/store.rs) commits through SQLite in WAL mode, where
every page a commit dirties is appended to the WAL as one frame (4 KiB + header). This
replays the store's statements on its schema (read from store.rs) with Python's sqlite3 -
the same SQL, not the Rust code path - and counts frames per commit, with checkpoints off so the WAL only grows:

- put: `INSERT OR REPLACE` of one wallet coupon (the issuance bench's plain write);
- issuance: the reward marker, the wallet coupon and the code item, and the payment-state
  read, in one transaction (the issuer's transaction; its client token is kept in memory).

    python3 infra/benches/wal_frames.py [ROUNDS]
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import sqlite3
import sys
import tempfile

STORE = pathlib.Path(__file__).resolve().parents[1] / "src" / "embedded" / "store.rs"


def schema() -> str:
    """The embedded store's schema, taken from the string it passes to `Writer::open`."""
    found = re.search(r'Writer::open\(\s*path,\s*"(.*?)",\s*\)', STORE.read_text(), re.DOTALL)
    if found is None:
        raise SystemExit(f"no schema found in {STORE}")
    return found.group(1)

INSERT = "INSERT INTO items (pk, sk, body) VALUES (?, ?, ?)"

# A wallet coupon's body as the issuer writes it (a reward coupon from `promoctl dev`,
# 600-odd bytes).
COUPON = json.dumps(
    {
        "campaign_id": "black-friday-2026",
        "code": "5CMP-4RX4-BQ4G",
        "currency": "KRW",
        "ends_at": "2026-12-23T16:35:08.043128733Z",
        "issued_at": "2026-11-23T16:35:08.043128733Z",
        "pk": "USER#u-1",
        "sk": "COUPON#5CMP-4RX4-BQ4G",
        "source": {"payment_id": "pay_1", "rule_id": "spend-50k", "type": "payment_reward"},
        "starts_at": "2026-11-23T16:35:08.043128733Z",
        "status": "ISSUED",
        "template": {
            "applies_to": {"brands": [], "categories": [], "products": []},
            "discount": {"fixed": 5000},
            "excludes": {"brands": [], "categories": [], "products": []},
            "id": "thanks-5000",
            "kind": "cart",
            "min_order": 30000,
            "stackable": True,
            "valid_days": 30,
        },
        "type": "coupon",
        "user_id": "u-1",
    },
    separators=(",", ":"),
)


def code() -> str:
    return secrets.token_hex(6).upper()


def put(db: sqlite3.Connection, _: int) -> None:
    db.execute("INSERT OR REPLACE INTO items (pk, sk, body) VALUES (?, ?, ?)", ("USER#u-1", f"COUPON#{code()}", COUPON))


def issue(db: sqlite3.Connection, i: int) -> None:
    c = code()
    db.execute("BEGIN IMMEDIATE")
    db.execute(INSERT, (f"PAYMENT#pay-{i:06}", "REWARD#black-friday#spend-50k", json.dumps({"code": c})))
    db.execute(INSERT, ("USER#u-1", f"COUPON#{c}", COUPON))
    db.execute(INSERT, (f"CODE#{c}", "CODE", json.dumps({"user_id": "u-1"})))
    db.execute("SELECT body FROM items WHERE pk = ? AND sk = ?", (f"PAYMENT#pay-{i:06}", "STATE")).fetchall()
    db.execute("COMMIT")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "frames.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")
        db.executescript(schema())

        def frames() -> int:
            size = os.path.getsize(path + "-wal")
            return max(0, (size - 32) // (4096 + 24))

        # A store that already holds what earlier rounds wrote.
        for i in range(rounds):
            put(db, i)
            issue(db, i)
        print(f"{rounds} rounds each, on a store already holding {2 * rounds} coupons")
        for name, op in [("plain put", put), ("exactly-once issuance", issue)]:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            before = frames()
            for i in range(rounds):
                op(db, rounds + i)
            print(f"{name}: {(frames() - before) / rounds:.2f} WAL frames per commit")
        db.close()


if __name__ == "__main__":
    main()
