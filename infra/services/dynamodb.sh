#!/usr/bin/env bash
# DynamoDB stand-in: moto (PyPI moto[server]) behind one global request lock
# (moto_locked.py), on 127.0.0.1 and a port the kernel picks.
#   infra/services/dynamodb.sh start|stop|status|check
# start reuses a running instance that answers, else starts one. The first time
# (per moto_locked.py + requirements), or with PROMO_CHECK_MOTO_ATOMIC=1, it also
# runs check_moto_atomic.py; `check` runs that check against the running server.
# The same endpoint serves moto's other services (SQS, Scheduler, ...).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=infra/tools.sh
source "$HERE/../tools.sh"

PIDFILE="$PROMO_TEST_STATE/dynamodb.pid"
PORTFILE="$PROMO_TEST_STATE/dynamodb.port"
LOGFILE="$PROMO_TEST_STATE/dynamodb.log"
CHECKED="$PROMO_TEST_STATE/dynamodb.atomic-checked"
# The hash of the server script a running instance was started from.
SERVED="$PROMO_TEST_STATE/dynamodb.served"

# True when the server on port $1 answers a DynamoDB ListTables call.
ddb_answers() {
    curl -fsS -o /dev/null --max-time 3 -X POST "http://127.0.0.1:$1/" \
        -H 'Content-Type: application/x-amz-json-1.0' \
        -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
        -d '{}'
}

running_port() {
    pid_alive "$PIDFILE" && [[ -s $PORTFILE ]] && ddb_answers "$(cat "$PORTFILE")" && cat "$PORTFILE"
}

atomic_check() {
    local endpoint=$1
    log "dynamodb: checking conditional writes are atomic (50 concurrent decrements of a stock of 20)"
    if ! "$PROMO_VENV/bin/python" "$HERE/check_moto_atomic.py" "$endpoint" >&2; then
        show_log_tail "$LOGFILE"
        die "dynamodb: $endpoint lets concurrent conditional writes race (see above)"
    fi
}

start() {
    ensure_state_dir
    command -v curl >/dev/null 2>&1 || die "dynamodb: curl is needed (apt-get install -y curl)"
    ensure_python_tools
    local port script
    script="$(hash_files "$HERE/moto_locked.py")"
    if port="$(running_port)" && [[ ! -f $SERVED || "$(cat "$SERVED")" != "$script" ]]; then
        # A server started from another moto_locked.py is not the stand-in the tests expect.
        log "dynamodb: pid $(cat "$PIDFILE") runs another moto_locked.py; restarting it"
        stop_pidfile "$PIDFILE" dynamodb
    fi
    if port="$(running_port)"; then
        log "dynamodb: already running on 127.0.0.1:$port (pid $(cat "$PIDFILE"))"
    else
        if pid_alive "$PIDFILE"; then
            warn "dynamodb: pid $(cat "$PIDFILE") does not answer; restarting it"
            stop_pidfile "$PIDFILE" dynamodb
        fi
        rm -f "$PORTFILE"
        log "dynamodb: starting moto_locked.py (log: $LOGFILE)"
        nohup "$PROMO_VENV/bin/python" "$HERE/moto_locked.py" --host 127.0.0.1 --port 0 \
            --port-file "$PORTFILE" >"$LOGFILE" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
        printf '%s\n' "$script" >"$SERVED"
        local deadline=$((SECONDS + PROMO_SERVICE_TIMEOUT))
        until port="$(running_port)"; do
            if ! pid_alive "$PIDFILE"; then
                show_log_tail "$LOGFILE"
                die "dynamodb: moto_locked.py exited during startup"
            fi
            if ((SECONDS >= deadline)); then
                show_log_tail "$LOGFILE"
                stop_pidfile "$PIDFILE" dynamodb
                die "dynamodb: not answering within ${PROMO_SERVICE_TIMEOUT}s"
            fi
            sleep 0.2
        done
        log "dynamodb: ready on 127.0.0.1:$port (pid $(cat "$PIDFILE"))"
    fi
    local endpoint="http://127.0.0.1:$port"
    local want
    want="$(hash_files "$HERE/moto_locked.py" "$HERE/check_moto_atomic.py" "$PROMO_REPO_ROOT/infra/requirements-tools.txt")"
    if [[ ${PROMO_CHECK_MOTO_ATOMIC:-0} == 1 || ! -f $CHECKED || "$(cat "$CHECKED")" != "$want" ]]; then
        atomic_check "$endpoint"
        printf '%s\n' "$want" >"$CHECKED"
    fi
    write_env dynamodb "PROMO_TEST_DYNAMODB_ENDPOINT=$endpoint"
}

stop() {
    rm -f "$PROMO_TEST_STATE/dynamodb.env"
    stop_pidfile "$PIDFILE" dynamodb
    rm -f "$PORTFILE"
}

status() {
    local port
    if port="$(running_port)"; then
        echo "dynamodb: running on http://127.0.0.1:$port (pid $(cat "$PIDFILE"))"
    else
        echo "dynamodb: stopped"
        return 3
    fi
}

check() {
    local port
    port="$(running_port)" || die "dynamodb: not running (run: $0 start)"
    atomic_check "http://127.0.0.1:$port"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
check) check ;;
*) die "usage: $0 start|stop|status|check" ;;
esac
