# shellcheck shell=bash
# Shared helpers for infra/test.sh, infra/tools.sh and infra/services/*.sh.
# Source it; it defines functions and a few variables and runs nothing.

# Absolute repo root, from this file's own location (works from any cwd).
PROMO_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROMO_TEST_STATE="${PROMO_TEST_STATE:-$HOME/.cache/promo/test-state}"
PROMO_TOOLS_DIR="${PROMO_TOOLS_DIR:-$HOME/.cache/promo/tools}"
PROMO_VENV="$PROMO_TOOLS_DIR/venv"
PROMO_LOG_TAG="${PROMO_LOG_TAG:-test}"
export PROMO_REPO_ROOT PROMO_TEST_STATE PROMO_TOOLS_DIR PROMO_VENV

# How long a service may take to answer after it was started (seconds).
PROMO_SERVICE_TIMEOUT="${PROMO_SERVICE_TIMEOUT:-60}"

log() { printf '[%s] %s\n' "$PROMO_LOG_TAG" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$PROMO_LOG_TAG" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "$PROMO_LOG_TAG" "$*" >&2
    exit 1
}

# Run a command as root (directly when we are root, else through sudo -n).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root to run: $* (no sudo available)"
    fi
}

ensure_state_dir() { mkdir -p "$PROMO_TEST_STATE"; }

# Print the last lines of one or more log files, loudly, to stderr.
show_log_tail() {
    local f
    for f in "$@"; do
        if [[ -r $f ]]; then
            printf '[%s] ----- last 40 lines of %s -----\n' "$PROMO_LOG_TAG" "$f" >&2
            tail -n 40 "$f" >&2 || true
            printf '[%s] ----- end of %s -----\n' "$PROMO_LOG_TAG" "$f" >&2
        else
            printf '[%s] (no log at %s)\n' "$PROMO_LOG_TAG" "$f" >&2
        fi
    done
}

# An unused TCP port on 127.0.0.1 (the kernel picks it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True when the pid stored in file $1 is a live process.
pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid="$(cat "$1")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# wait_until SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds.
wait_until() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# Stop the process whose pid is in file $1 (TERM, then KILL after 10 s).
stop_pidfile() {
    local pidfile=$1 name=$2 pid
    if ! pid_alive "$pidfile"; then
        log "$name: not running"
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    log "$name: stopping pid $pid"
    kill "$pid" 2>/dev/null || true
    if ! wait_until 10 bash -c "! kill -0 $pid"; then
        warn "$name: pid $pid did not exit on TERM; sending KILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

# Write the env fragment of one service: write_env NAME 'VAR=value'...
write_env() {
    local name=$1
    shift
    ensure_state_dir
    local tmp="$PROMO_TEST_STATE/$name.env.tmp" kv
    : >"$tmp"
    for kv in "$@"; do
        printf 'export %s=%q\n' "${kv%%=*}" "${kv#*=}" >>"$tmp"
    done
    mv "$tmp" "$PROMO_TEST_STATE/$name.env"
}

# Print the sha256 of the given files' names and contents (not their directory,
# so clones at different paths share the markers; missing files hash as empty).
hash_files() {
    local f
    for f in "$@"; do
        printf '%s\n' "${f##*/}"
        if [[ -f $f ]]; then cat "$f"; fi
    done | sha256sum | cut -d' ' -f1
}
