#!/usr/bin/env bash
# End-to-end webhook throughput of `promoctl dev` (release build) on loopback, with wrk as
# the load tool and `GET /healthz` of the same server as the same-run baseline.
#
#   infra/bench/webhook_load.sh [SECONDS] [CONNECTIONS]      (defaults: 10, 64)
#   PROMO_CONSUMERS=0 infra/bench/webhook_load.sh            accept only, issue nothing
#
# Every request is a distinct, correctly signed Standard Webhooks delivery of a distinct
# payment that earns a coupon, so the server does the whole job: verify, dedupe record,
# durable enqueue, and (in the background consumers) issue the coupon.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SECONDS_RUN="${1:-10}"
CONNS="${2:-64}"
PORT=18931
REQUESTS=120000

command -v wrk >/dev/null || apt-get install -y wrk >/dev/null
cargo build --release -p promoctl >/dev/null
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/promoctl"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

export PROMO_DATA_DIR="$WORK/data" PROMO_LISTEN="127.0.0.1:$PORT" PROMO_LOG=warn
export PROMO_CONSUMERS="${PROMO_CONSUMERS:-2}"
"$BIN" campaign deploy infra/tests/fixtures/black-friday-2026.toml >/dev/null
"$BIN" dev 2>"$WORK/dev.log" &
PID=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# Pre-signed requests (HMAC with the development secret of promoctl dev), one per line, and
# a wrk script that replays them in order.
python3 - "$WORK/requests.tsv" "$REQUESTS" <<'PY'
import base64, hashlib, hmac, json, sys, time
out, n = sys.argv[1], int(sys.argv[2])
key = base64.b64decode("cHJvbW8tZGV2LXNlY3JldC1kby1ub3QtdXNlLWluLXByb2Q=")
ts = str(int(time.time()))
with open(out, "w") as f:
    for i in range(n):
        body = json.dumps({"type": "paid", "payment_id": f"bench-pay-{i}", "order_id": f"bench-order-{i}",
                           "user_id": f"bench-user-{i % 5000}", "amount": 60000, "currency": "KRW",
                           "items": [], "occurred_at": "2026-11-27T10:00:00Z"}, separators=(",", ":"))
        mid = f"msg_bench_{i}"
        sig = base64.b64encode(hmac.new(key, f"{mid}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode()
        f.write(f"{mid}\t{ts}\tv1,{sig}\t{body}\n")
PY
cat >"$WORK/requests.lua" <<LUA
local r = {}
init = function(args)
  for line in io.lines("$WORK/requests.tsv") do
    local id, ts, sig, body = line:match("([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)")
    r[#r + 1] = wrk.format("POST", "/v1/webhooks/standard", {["content-type"] = "application/json",
      ["webhook-id"] = id, ["webhook-timestamp"] = ts, ["webhook-signature"] = sig}, body)
  end
end
local i = 0
request = function()
  i = i + 1
  if i > #r then i = 1 end
  return r[i]
end
done = function(summary, latency, requests)
  io.write(string.format("non-2xx responses: %d\n", summary.errors.status))
end
LUA

echo "== baseline: GET /healthz (same server, same run) =="
wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" --latency "http://127.0.0.1:$PORT/healthz" | grep -E 'Requests/sec|Latency|99%|50%'
echo "== POST /v1/webhooks/standard (distinct signed deliveries) =="
start=$(date +%s.%N)
wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" --latency -s "$WORK/requests.lua" "http://127.0.0.1:$PORT" | grep -E 'Requests/sec|Latency|99%|50%|non-2xx|requests in'
# Wait until the in-process issuer has drained the queue: end-to-end coupons/s.
while [[ $PROMO_CONSUMERS != 0 ]] && sqlite3 "$WORK/data/queue.db" 'select count(*) from messages' 2>/dev/null | grep -qv '^0$'; do sleep 0.2; done
end=$(date +%s.%N)
coupons=$(sqlite3 "$WORK/data/store.db" "select count(*) from items where sk like 'COUPON#%'")
echo "coupons issued: $coupons in $(python3 -c "print(round($end - $start, 1))") s (accept + drain) = $(python3 -c "print(round($coupons / ($end - $start)))")/s end to end"
