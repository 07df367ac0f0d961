#!/usr/bin/env bash
# THE test command: installs and starts what the tests need (idempotently; fast
# when already there), then runs every suite and fails loudly on the first
# problem. Never skips a suite silently.
#
#   infra/test.sh                  everything
#   infra/test.sh --quick          skip clippy, the wasm check/build and the
#                                  Miniflare tests that need that build (announced)
#   infra/test.sh --services-only  ensure the Python/Node tools, start the services,
#                                  print the env exports, exit
#   infra/test.sh --stop           stop the services
#
# Environment: CARGO_TARGET_DIR (used if set), PROMO_TEST_STATE (pids, ports,
# logs; default ~/.cache/promo/test-state), PROMO_TOOLS_DIR (Python venv;
# default ~/.cache/promo/tools), PROMO_SERVICE_TIMEOUT (s, default 60),
# PROMO_CHECK_MOTO_ATOMIC=1 (rerun the moto atomicity check).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=infra/tools.sh
source "$ROOT/infra/tools.sh"

MODE=full
QUICK=0
for arg in "$@"; do
    case "$arg" in
    --services-only) MODE=services ;;
    --stop) MODE=stop ;;
    --quick) QUICK=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $arg (try --help)" ;;
    esac
done

SERVICES=(rabbitmq dynamodb ses)

start_services() {
    local s
    for s in "${SERVICES[@]}"; do
        "$ROOT/infra/services/$s.sh" start || die "service $s failed to start (see above)"
    done
    # shellcheck source=infra/services/env.sh
    source "$ROOT/infra/services/env.sh"
    # One file to source by hand: `source ~/.cache/promo/test-state/env`.
    "$ROOT/infra/services/env.sh" >"$PROMO_TEST_STATE/env"
}

if [[ $MODE == stop ]]; then
    for s in "${SERVICES[@]}"; do
        "$ROOT/infra/services/$s.sh" stop
    done
    log "services stopped"
    exit 0
fi

if [[ $MODE == services ]]; then
    t0=$SECONDS
    ensure_python_tools
    ensure_node_tools
    start_services
    log "services ready in $((SECONDS - t0))s; environment for the tests (also in $PROMO_TEST_STATE/env):"
    cat "$PROMO_TEST_STATE/env"
    exit 0
fi

# ---------------------------------------------------------------- full run --
STEP_NO=0
CURRENT_STEP=""
SUMMARY=()      # one line per step: status, name, seconds
RESULT_LINES=() # the runners' own summary lines
PASSED=0
FAILED=0
LOGDIR="$PROMO_TEST_STATE/last-run"
mkdir -p "$LOGDIR"

print_summary() {
    local line
    echo
    log "================ summary ================"
    for line in "${SUMMARY[@]}"; do log "$line"; done
    if ((${#RESULT_LINES[@]})); then
        log "---- runner results ----"
        for line in "${RESULT_LINES[@]}"; do echo "$line"; done
    fi
}

on_exit() {
    local rc=$?
    if ((rc != 0)) && [[ -n $CURRENT_STEP ]]; then
        SUMMARY+=("FAILED  $CURRENT_STEP")
        print_summary
        echo "$PASSED passed, $FAILED failed"
        log "FAILED at step: $CURRENT_STEP (exit $rc); logs in $LOGDIR"
    fi
}
trap on_exit EXIT

begin_step() {
    STEP_NO=$((STEP_NO + 1))
    CURRENT_STEP="$1"
    STEP_T0=$SECONDS
    echo >&2
    log "==> [$STEP_NO] $CURRENT_STEP"
}

end_step() {
    SUMMARY+=("ok      $CURRENT_STEP ($((SECONDS - STEP_T0))s)")
    CURRENT_STEP=""
}

skip_step() {
    STEP_NO=$((STEP_NO + 1))
    echo >&2
    log "==> [$STEP_NO] SKIPPED (--quick): $1"
    SUMMARY+=("SKIPPED $1 (--quick)")
}

# run_step NAME COMMAND...: run a command as one step. Not in a conditional, so
# errexit stays on inside it: any failure ends the run, and the EXIT trap says
# which step failed.
run_step() {
    begin_step "$1"
    shift
    "$@"
    end_step
}

# count_cargo_results NAME LOG RC: adds a cargo test log's results to the totals; fails
# the run on a failure or when no test passed.
count_cargo_results() {
    local name=$1 log=$2 rc=$3 p f lines
    mapfile -t lines < <(grep -E '^test result: ' "$log" || true)
    read -r p f < <(printf '%s\n' "${lines[@]}" | awk '
        { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
        END { print p + 0, f + 0 }')
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    RESULT_LINES+=("$name: ${#lines[@]} test binaries/doc-test sets: $p passed, $f failed")
    ((rc == 0)) || die "$name failed (exit $rc): $f failed; log: $log"
    ((${#lines[@]} > 0 && p > 0)) || die "$name ran no test (no 'test result:' line with a pass); log: $log"
}

# The test that runs `cargo lambda watch` builds with cargo in the same target directory,
# so it runs as its own step (lambda_tests), not inside the workspace run.
LAMBDA_WATCH_TEST=cargo_lambda_watch::issuer_and_api_serve_sample_events_under_cargo_lambda_watch
# The tests that restart RabbitMQ run after the others, one at a time: in one test binary they
# would pull the broker from under the tests that share it.
BROKER_RESTART_TESTS=(
    email_broker_restart::a_broker_restart_mid_fan_out_mails_nobody_twice_and_nobody_is_left_out
    rabbitmq_durability::persistent_messages_survive_a_broker_restart
)

cargo_tests() {
    local log="$LOGDIR/cargo-test.log" rc skips=() t
    for t in "$LAMBDA_WATCH_TEST" "${BROKER_RESTART_TESTS[@]}"; do skips+=(--skip "$t"); done
    set +e
    {
        cargo test --workspace --features promoctl/prod -- --include-ignored "${skips[@]}" &&
            PROMO_TEST_RABBITMQ_RESTART=1 cargo test --workspace --features promoctl/prod --test it -- \
                --ignored --exact --test-threads=1 "${BROKER_RESTART_TESTS[@]}"
    } 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    count_cargo_results "cargo test" "$log" "$rc"
}

# Every function built as it is deployed (arm64, cross-compiled through zig), then the
# binaries served by `cargo lambda watch` and invoked with sample events.
lambda_tests() {
    local log="$LOGDIR/cargo-lambda.log" rc out="${CARGO_TARGET_DIR:-$ROOT/target}/lambda" fn
    (cd "$ROOT/lambdas" && cargo lambda build --release --arm64)
    for fn in issuer api sender feedback scheduler; do
        [[ -s $out/$fn/bootstrap ]] || die "cargo lambda build produced no $out/$fn/bootstrap"
        # ELF e_machine (bytes 18-19) is 0xb7 for aarch64.
        [[ $(od -An -tx1 -j18 -N2 "$out/$fn/bootstrap" | tr -d ' ') == b700 ]] ||
            die "$out/$fn/bootstrap is not an arm64 ELF binary"
    done
    set +e
    cargo test -p promoctl --features prod --test it -- --ignored --exact "$LAMBDA_WATCH_TEST" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    count_cargo_results "cargo lambda watch/invoke" "$log" "$rc"
}

# sam build as a deploy runs it, reusing the arm64 artifacts lambda_tests just built: SAM's
# rust-cargolambda build method runs `cargo lambda build --release --arm64 --bin <fn>` in
# lambdas/ on the same target directory (nothing left to compile), then copies
# target/lambda/<fn>/bootstrap into the build directory; each must be that very binary.
sam_build() {
    local out="$PROMO_TEST_STATE/sam-build" target="${CARGO_TARGET_DIR:-$ROOT/target}" fn bin
    rm -rf "$out"
    (cd "$ROOT" && SAM_CLI_TELEMETRY=0 CARGO_TARGET_DIR="$target" "$PROMO_SAM" build \
        --template-file template.yaml --build-dir "$out" --cache-dir "$PROMO_TEST_STATE/sam-cache") ||
        die "sam build failed"
    for fn in Issuer:issuer Api:api Sender:sender Feedback:feedback Scheduler:scheduler; do
        bin="$out/${fn%%:*}Function/bootstrap"
        [[ -s $bin ]] || die "sam build left no $bin"
        cmp -s "$bin" "$target/lambda/${fn##*:}/bootstrap" ||
            die "sam build's $bin is not the arm64 binary cargo lambda built ($target/lambda/${fn##*:}/bootstrap)"
    done
    log "sam build: 5 functions, the arm64 binaries of the cargo lambda build step"
}

node_tests() {
    local log="$LOGDIR/node-test.log" rc p f c
    compgen -G "$ROOT/edge/tests/*.test.mjs" >/dev/null || die "no edge/tests/*.test.mjs files"
    [[ -f $ROOT/edge/build/worker/shim.mjs ]] || die "edge/build/worker/shim.mjs is missing: the worker build did not produce it"
    set +e
    # The unsubscribe page's browser test runs the local platform's binary, built by the
    # cargo tests before.
    export PROMOCTL_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/promoctl"
    [[ -x $PROMOCTL_BIN ]] || die "$PROMOCTL_BIN is missing: the cargo tests build it"
    # TAP on every Node version (newer ones default to the spec reporter).
    (cd "$ROOT/edge" && node --test --test-reporter=tap tests/) 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    p="$(sed -n 's/^# pass \([0-9][0-9]*\)$/\1/p' "$log" | tail -n1)"
    f="$(sed -n 's/^# fail \([0-9][0-9]*\)$/\1/p' "$log" | tail -n1)"
    c="$(sed -n 's/^# cancelled \([0-9][0-9]*\)$/\1/p' "$log" | tail -n1)"
    p=${p:-0} f=${f:-0} c=${c:-0}
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f + c))
    RESULT_LINES+=("node --test: # pass $p" "node --test: # fail $f" "node --test: # cancelled $c")
    ((rc == 0)) || die "node tests failed (exit $rc); log: $log"
    ((p > 0)) || die "node tests ran no test; log: $log"
}

build_worker() {
    (cd "$ROOT/edge" && worker-build --release)
}

# Each stage's Worker as `wrangler deploy` would upload it (offline: --dry-run builds and
# bundles, checks wrangler.toml's environment, uploads nothing).
wrangler_dry_runs() {
    local env log
    for env in staging prod; do
        log="$LOGDIR/wrangler-dry-run-$env.log"
        (cd "$ROOT" && "$ROOT/edge/node_modules/.bin/wrangler" deploy --dry-run --env "$env" \
            --outdir "$PROMO_TEST_STATE/wrangler-$env") >"$log" 2>&1 ||
            die "wrangler deploy --dry-run --env $env failed; log: $log"
        grep -q -- "--dry-run: exiting now" "$log" || die "wrangler deploy --dry-run --env $env did not finish; log: $log"
        log "wrangler deploy --dry-run --env $env: ok"
    done
}

ensure_all_tools() {
    ensure_python_tools
    ensure_sam_cli
    ensure_node_tools
    ensure_rust_tools
    ensure_browser
}

# The shared target directory keeps every build's test executables (several hundred MB each,
# a new one whenever a crate changes) and incremental caches: left alone they fill the disk
# within a day of runs. Keep the newest executable of each test and drop incremental caches
# older than a day; cargo rebuilds whatever it misses.
prune_target_dir() {
    local deps="${CARGO_TARGET_DIR:-$ROOT/target}/debug/deps"
    local incremental="${CARGO_TARGET_DIR:-$ROOT/target}/debug/incremental"
    if [[ -d $deps ]]; then
        find "$deps" -maxdepth 1 -type f -executable -printf '%T@ %f\n' | sort -rn |
            awk '{ n = $2; sub(/-[0-9a-f]+$/, "", n); if (seen[n]++) print $2 }' |
            (cd "$deps" && xargs -r rm -f)
    fi
    if [[ -d $incremental ]]; then
        find "$incremental" -mindepth 1 -maxdepth 1 -type d -mtime +0 -exec rm -rf {} +
    fi
}

T0=$SECONDS
prune_target_dir
log "repo: $ROOT; CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<cargo default>}; mode: $([[ $QUICK == 1 ]] && echo quick || echo full)"

run_step "ensure tools (python venv, edge/node_modules, rust targets and tools, chromium)" ensure_all_tools
run_step "start services (rabbitmq, dynamodb/moto, ses)" start_services
log "PROMO_TEST_RABBITMQ_URL=$PROMO_TEST_RABBITMQ_URL"
log "PROMO_TEST_DYNAMODB_ENDPOINT=$PROMO_TEST_DYNAMODB_ENDPOINT"
log "PROMO_TEST_SES_ENDPOINT=$PROMO_TEST_SES_ENDPOINT"

run_step "cargo fmt --all -- --check" cargo fmt --all -- --check

if ((QUICK)); then
    skip_step "cargo clippy --workspace --all-targets -- -D warnings"
else
    run_step "cargo clippy --workspace --all-targets -- -D warnings" \
        cargo clippy --workspace --all-targets -- -D warnings
    run_step "cargo clippy -p promoctl --features prod --all-targets -- -D warnings" \
        cargo clippy -p promoctl --features prod --all-targets -- -D warnings
fi

if ((QUICK)); then
    skip_step "cargo clippy -p promo-shared -p promo-edge --target wasm32-unknown-unknown -- -D warnings"
else
    # The Worker's wasm-only modules (Durable Object, KV, Cache API) build only here.
    run_step "cargo clippy -p promo-shared -p promo-edge --target wasm32-unknown-unknown -- -D warnings" \
        cargo clippy -p promo-shared -p promo-edge --target wasm32-unknown-unknown -- -D warnings
fi

run_step "cargo test --workspace --features promoctl/prod -- --include-ignored" cargo_tests

if ((QUICK)); then
    skip_step "cargo lambda build --release --arm64, then cargo lambda watch + invoke"
    skip_step "sam build (reusing the cargo lambda build's arm64 artifacts)"
else
    run_step "cargo lambda build --release --arm64, then cargo lambda watch + invoke" lambda_tests
    run_step "sam build (reusing the cargo lambda build's arm64 artifacts)" sam_build
fi

if ((QUICK)); then
    skip_step "worker build: (cd edge && worker-build --release)"
    skip_step "Miniflare tests: (cd edge && node --test tests/) (they need the worker build)"
    skip_step "wrangler deploy --dry-run --env staging|prod"
else
    run_step "worker build: (cd edge && worker-build --release)" build_worker
    run_step "Miniflare tests: (cd edge && node --test tests/)" node_tests
    run_step "wrangler deploy --dry-run --env staging|prod" wrangler_dry_runs
fi

run_step "cfn-lint template.yaml" cfn-lint template.yaml
run_step "sam validate --lint --template template.yaml" \
    env SAM_CLI_TELEMETRY=0 "$PROMO_SAM" validate --lint --template template.yaml
# template.yaml translated to CloudFormation and created on moto's CloudFormation (what moto
# cannot create checked on the translated template); `promoctl env add` reads the stack's
# outputs with the promoctl the cargo tests built (--features prod).
run_step "CloudFormation rehearsal: infra/rehearsal.sh (translate, create on moto, promoctl env add)" \
    env PROMOCTL_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/promoctl" "$ROOT/infra/rehearsal.sh"

print_summary
prune_target_dir
log "all steps passed in $((SECONDS - T0))s"
echo "$PASSED passed, $FAILED failed"
