#!/usr/bin/env bash
# Cached product-page price reads through `promoctl dev` (release build) on loopback, with
# wrk, against nginx serving the same JSON body from disk on loopback in the same run.
#
#   infra/bench/price_load.sh [SECONDS] [CONNECTIONS]      (defaults: 10, 64)
#
# promoctl answers every read from its in-process cache (one MISS first, then HITs; the TTL
# is set longer than the run), so the comparison is of the serving path: routing, the cache
# look-up, the catalog and price-book reads that key it, and the HTTP stack.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SECONDS_RUN="${1:-10}"
CONNS="${2:-64}"
PORT=18932
NGINX_PORT=18933

command -v wrk >/dev/null || { echo "wrk is needed (apt-get install -y wrk)" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx is needed (apt-get install -y nginx-light)" >&2; exit 1; }
cargo build --release -p promoctl >/dev/null
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/promoctl"
WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; nginx -c "$WORK/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$WORK"' EXIT

export PROMO_DATA_DIR="$WORK/data" PROMO_LISTEN="127.0.0.1:$PORT" PROMO_LOG=warn PROMO_CONSUMERS=0
export PROMO_PRICE_ROUNDING_UNIT=10 PROMO_PRICE_CACHE_TTL_SECONDS=3600
cat >"$WORK/campaign.toml" <<'TOML'
id = "bench"
name = "Bench"
currency = "KRW"
starts_at = "2026-01-01T00:00:00Z"
ends_at = "2099-01-01T00:00:00Z"
[[coupons]]
id = "welcome"
kind = "product"
discount = { percent = 15, max = 7000 }
min_order = 30000
applies_to = { brands = ["b-1"] }
stackable = true
[claim]
coupon = "welcome"
stock = 1000
[[payment_promotions]]
id = "card-x"
method = "card:x"
discount = { percent = 10, max = 5000 }
min_payment = 40000
TOML
echo '[{"id":"p-1","brand":"b-1","category":"c-1","currency":"KRW","list_price":59000,"sale_price":52000}]' \
    >"$WORK/products.json"
"$BIN" campaign deploy "$WORK/campaign.toml" >/dev/null
"$BIN" products publish "$WORK/products.json" >/dev/null
"$BIN" dev 2>"$WORK/dev.log" &
PID=$!
URL="http://127.0.0.1:$PORT/v1/products/p-1/max-benefit-price"
for _ in $(seq 50); do curl -fsS "$URL" >/dev/null 2>&1 && break; sleep 0.1; done

# The same body, served by nginx from a file.
chmod 755 "$WORK"
mkdir -p "$WORK/www"
curl -fsS "$URL" >"$WORK/www/price.json"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/tmp; proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp;
    uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location / { default_type application/json; }
    }
}
CONF
mkdir -p "$WORK/tmp"
nginx -c "$WORK/nginx.conf"
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$NGINX_PORT/price.json" >/dev/null 2>&1 && break; sleep 0.1; done
chmod -R a+rX "$WORK/www"
cmp -s "$WORK/www/price.json" <(curl -fsS "http://127.0.0.1:$NGINX_PORT/price.json") || {
    echo "nginx does not serve the same body" >&2
    exit 1
}
echo "body: $(wc -c <"$WORK/www/price.json") bytes: $(cat "$WORK/www/price.json")"
curl -fsS -D - -o /dev/null "$URL" | grep -i -E '^(x-cache|cache-control|age|etag):'

run() { wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --latency "$1" | grep -E 'Requests/sec|Latency|99%|Non-2xx'; }
echo "== nginx, static file (baseline): http://127.0.0.1:$NGINX_PORT/price.json"
run "http://127.0.0.1:$NGINX_PORT/price.json"
echo "== promoctl dev, cached price read: $URL"
run "$URL"
