#!/usr/bin/env bash
# RabbitMQ (Debian's rabbitmq-server) on 127.0.0.1:5672, guest/guest.
#   infra/services/rabbitmq.sh start|stop|status
# start reuses a broker that already answers AMQP on 5672, else installs the
# package if missing and starts `rabbitmq-server -detached`. Fails loudly, with
# the broker's log tail, if it does not answer within $PROMO_SERVICE_TIMEOUT s.
set -euo pipefail
# shellcheck source=infra/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RABBIT_PORT=5672
RABBIT_URL="amqp://guest:guest@127.0.0.1:$RABBIT_PORT/%2f"
RABBIT_LOG="$PROMO_TEST_STATE/rabbitmq.log"
PATH="$PATH:/usr/sbin:/usr/lib/rabbitmq/bin"

# True when the broker answers an AMQP 0-9-1 protocol header with a method frame.
amqp_answers() {
    python3 - "$RABBIT_PORT" <<'EOF'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    frame = s.recv(7)
    s.close()
except OSError:
    sys.exit(1)
sys.exit(0 if frame[:1] == b"\x01" else 1)
EOF
}

broker_logs() {
    local host
    host="$(hostname -s 2>/dev/null || hostname)"
    show_log_tail "$RABBIT_LOG" "/var/log/rabbitmq/rabbit@$host.log" /var/log/rabbitmq/startup_err
}

ensure_installed() {
    if command -v rabbitmq-server >/dev/null 2>&1 && command -v rabbitmqctl >/dev/null 2>&1; then
        return 0
    fi
    local alog="$PROMO_TEST_STATE/apt-rabbitmq.log"
    log "rabbitmq: installing Debian package rabbitmq-server (log: $alog)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server >"$alog" 2>&1; then
        log "rabbitmq: install failed; running apt-get update and retrying"
        if ! { as_root apt-get update && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y rabbitmq-server; } >>"$alog" 2>&1; then
            show_log_tail "$alog"
            die "rabbitmq: apt-get install -y rabbitmq-server failed"
        fi
    fi
    command -v rabbitmqctl >/dev/null 2>&1 || die "rabbitmq: installed, but rabbitmqctl is not on PATH"
}

start() {
    ensure_state_dir
    if amqp_answers; then
        log "rabbitmq: already running on 127.0.0.1:$RABBIT_PORT"
    else
        if port_open "$RABBIT_PORT"; then
            die "rabbitmq: something listens on 127.0.0.1:$RABBIT_PORT but does not speak AMQP"
        fi
        ensure_installed
        log "rabbitmq: starting (rabbitmq-server -detached; log: $RABBIT_LOG)"
        : >"$RABBIT_LOG"
        if ! as_root rabbitmq-server -detached >>"$RABBIT_LOG" 2>&1 </dev/null; then
            broker_logs
            die "rabbitmq: rabbitmq-server -detached failed"
        fi
        # await_startup fails until the node has registered with epmd: retry.
        local deadline=$((SECONDS + PROMO_SERVICE_TIMEOUT))
        until as_root rabbitmqctl -q await_startup --timeout 10 >>"$RABBIT_LOG" 2>&1 && amqp_answers; do
            if ((SECONDS >= deadline)); then
                broker_logs
                die "rabbitmq: not ready within ${PROMO_SERVICE_TIMEOUT}s"
            fi
            sleep 1
        done
        log "rabbitmq: ready on 127.0.0.1:$RABBIT_PORT"
    fi
    write_env rabbitmq "PROMO_TEST_RABBITMQ_URL=$RABBIT_URL"
}

stop() {
    rm -f "$PROMO_TEST_STATE/rabbitmq.env"
    if ! amqp_answers && ! port_open "$RABBIT_PORT"; then
        log "rabbitmq: not running"
        return 0
    fi
    log "rabbitmq: stopping (rabbitmqctl shutdown)"
    if ! as_root rabbitmqctl -q shutdown >>"$RABBIT_LOG" 2>&1; then
        as_root rabbitmqctl -q stop >>"$RABBIT_LOG" 2>&1 || true
    fi
    if ! wait_until 30 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$RABBIT_PORT)"; then
        broker_logs
        die "rabbitmq: still listening on $RABBIT_PORT after shutdown"
    fi
    log "rabbitmq: stopped"
}

status() {
    if amqp_answers; then
        echo "rabbitmq: running on 127.0.0.1:$RABBIT_PORT ($RABBIT_URL)"
    else
        echo "rabbitmq: stopped"
        return 3
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status" ;;
esac
