#!/usr/bin/env bash
# SES v2 stand-in: npm aws-ses-v2-local (from edge/node_modules) on 127.0.0.1
# and a port the kernel picks. Tests read sent mail from GET /store and reset it
# with POST /clear-store.
#   infra/services/ses.sh start|stop|status
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=infra/tools.sh
source "$HERE/../tools.sh"

PIDFILE="$PROMO_TEST_STATE/ses.pid"
PORTFILE="$PROMO_TEST_STATE/ses.port"
LOGFILE="$PROMO_TEST_STATE/ses.log"

ses_answers() {
    curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$1/store"
}

running_port() {
    pid_alive "$PIDFILE" && [[ -s $PORTFILE ]] && ses_answers "$(cat "$PORTFILE")" && cat "$PORTFILE"
}

# The port the server printed ("server running at http://localhost:PORT").
logged_port() {
    sed -n 's/.*server running at [^ ]*:\([0-9][0-9]*\).*/\1/p' "$LOGFILE" | tail -n1
}

start() {
    ensure_state_dir
    command -v curl >/dev/null 2>&1 || die "ses: curl is needed (apt-get install -y curl)"
    ensure_node_tools
    local port bin="$PROMO_REPO_ROOT/edge/node_modules/.bin/aws-ses-v2-local"
    if port="$(running_port)"; then
        log "ses: already running on 127.0.0.1:$port (pid $(cat "$PIDFILE"))"
    else
        if pid_alive "$PIDFILE"; then
            warn "ses: pid $(cat "$PIDFILE") does not answer; restarting it"
            stop_pidfile "$PIDFILE" ses
        fi
        rm -f "$PORTFILE"
        log "ses: starting aws-ses-v2-local (log: $LOGFILE)"
        # Started directly (not through npx) so the recorded pid is the server.
        nohup "$bin" --host 127.0.0.1 --port 0 >"$LOGFILE" 2>&1 </dev/null &
        echo $! >"$PIDFILE"
        local deadline=$((SECONDS + PROMO_SERVICE_TIMEOUT))
        while :; do
            port="$(logged_port)"
            if [[ -n $port ]] && ses_answers "$port"; then
                echo "$port" >"$PORTFILE"
                break
            fi
            if ! pid_alive "$PIDFILE"; then
                show_log_tail "$LOGFILE"
                die "ses: aws-ses-v2-local exited during startup"
            fi
            if ((SECONDS >= deadline)); then
                show_log_tail "$LOGFILE"
                stop_pidfile "$PIDFILE" ses
                die "ses: not answering GET /store within ${PROMO_SERVICE_TIMEOUT}s"
            fi
            sleep 0.2
        done
        log "ses: ready on 127.0.0.1:$port (pid $(cat "$PIDFILE"))"
    fi
    write_env ses "PROMO_TEST_SES_ENDPOINT=http://127.0.0.1:$port"
}

stop() {
    rm -f "$PROMO_TEST_STATE/ses.env"
    stop_pidfile "$PIDFILE" ses
    rm -f "$PORTFILE"
}

status() {
    local port
    if port="$(running_port)"; then
        echo "ses: running on http://127.0.0.1:$port (pid $(cat "$PIDFILE"))"
    else
        echo "ses: stopped"
        return 3
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 start|stop|status" ;;
esac
