#!/usr/bin/env bash
# Install, idempotently, the tools infra/test.sh needs. Each part checks a
# version or a hash marker first, so a run where everything is there takes
# well under a second (the Rust part a little more).
#
#   infra/tools.sh [all|python|node|rust|browser]      (default: all)
#
# Sourced (by infra/test.sh and the service scripts) it only defines:
#   ensure_python_tools  venv with moto[server], boto3, cfn-lint, cargo-lambda and the
#                        webhook reference SDKs (stripe, standardwebhooks)
#   ensure_sam_cli       a separate venv with the AWS SAM CLI (it pins its own boto3/cfn-lint)
#   ensure_node_tools    edge/node_modules from edge/package-lock.json (npm ci)
#   ensure_rust_tools    wasm32 and aarch64 targets, rustfmt/clippy, worker-build, wasm-bindgen-cli
#   ensure_browser       Debian's chromium (the unsubscribe page's browser test, via playwright-core)
# Each writes what it exports to $PROMO_TEST_STATE/tools-*.env as well.

# shellcheck source=infra/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/services/lib.sh"

PROMO_WORKER_BUILD_VERSION="${PROMO_WORKER_BUILD_VERSION:-0.8.7}"

# ensure_venv NAME VENV REQUIREMENTS CHECK_EXE: a venv with REQUIREMENTS installed, redone
# only when the requirements file or the Python version changed (a hash marker in the venv).
ensure_venv() {
    local name=$1 venv=$2 req=$3 check=$4
    local marker="$venv/.promo-requirements.sha256"
    local pylog="$PROMO_TOOLS_DIR/pip-install-${name// /-}.log"
    local want
    command -v python3 >/dev/null 2>&1 || die "python3 not found: install Python 3.10+ (Debian: apt-get install -y python3 python3-venv)"
    want="$(
        hash_files "$req"
        python3 -c 'import sys; print(sys.version)'
    )"
    want="$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)"
    if [[ -x $venv/bin/$check && -f $marker && "$(cat "$marker")" == "$want" ]]; then
        log "$name: up to date in $venv"
        return 0
    fi
    mkdir -p "$PROMO_TOOLS_DIR"
    if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        log "$name: creating venv $venv"
        rm -rf "$venv"
        python3 -m venv "$venv" >"$pylog" 2>&1 || {
            show_log_tail "$pylog"
            die "python3 -m venv failed (Debian: apt-get install -y python3-venv)"
        }
    fi
    log "$name: pip install -r ${req#"$PROMO_REPO_ROOT"/} (log: $pylog)"
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" >>"$pylog" 2>&1; then
        show_log_tail "$pylog"
        die "pip install -r $req failed"
    fi
    printf '%s\n' "$want" >"$marker"
    log "$name: installed"
}

ensure_python_tools() {
    ensure_venv "python tools" "$PROMO_VENV" "$PROMO_REPO_ROOT/infra/requirements-tools.txt" cargo-lambda
    local exe
    for exe in moto_server cfn-lint cargo-lambda; do
        [[ -x $PROMO_VENV/bin/$exe ]] || die "python tools: $PROMO_VENV/bin/$exe missing (rm -rf $PROMO_VENV and rerun)"
    done
    # The venv's bin must come first: cargo-lambda runs zig as `python3 -m ziglang`.
    case ":$PATH:" in
    *":$PROMO_VENV/bin:"*) ;;
    *) PATH="$PROMO_VENV/bin:$PATH" ;;
    esac
    export PATH
    ensure_state_dir
    # shellcheck disable=SC2016 # $PATH is expanded when the env file is sourced
    printf 'case ":$PATH:" in *":%s:"*) ;; *) export PATH="%s:$PATH" ;; esac\n' \
        "$PROMO_VENV/bin" "$PROMO_VENV/bin" >"$PROMO_TEST_STATE/tools-python.env"
}

# The SAM CLI in a venv of its own: it pins its own boto3 and cfn-lint.
ensure_sam_cli() {
    local venv="$PROMO_TOOLS_DIR/sam-venv"
    ensure_venv "sam cli" "$venv" "$PROMO_REPO_ROOT/infra/requirements-sam.txt" sam
    [[ -x $venv/bin/sam ]] || die "sam cli: $venv/bin/sam missing (rm -rf $venv and rerun)"
    PROMO_SAM="$venv/bin/sam"
    export PROMO_SAM
}

ensure_node_tools() {
    local edge="$PROMO_REPO_ROOT/edge"
    local marker="$edge/node_modules/.promo-lock.sha256"
    local npmlog="$PROMO_TEST_STATE/npm-ci.log"
    local want
    command -v node >/dev/null 2>&1 || die "node not found: install Node.js 20+ (Debian: apt-get install -y nodejs npm)"
    command -v npm >/dev/null 2>&1 || die "npm not found (Debian: apt-get install -y npm)"
    [[ -f $edge/package-lock.json ]] || die "edge/package-lock.json is missing: run (cd edge && npm install) and commit the lock"
    want="$(
        hash_files "$edge/package.json" "$edge/package-lock.json"
        node --version
    )"
    want="$(printf '%s' "$want" | sha256sum | cut -d' ' -f1)"
    ensure_state_dir
    if [[ -d $edge/node_modules && -f $marker && "$(cat "$marker")" == "$want" ]]; then
        log "node tools: edge/node_modules up to date"
    else
        log "node tools: npm ci in edge/ (log: $npmlog)"
        if ! (cd "$edge" && npm ci --no-audit --no-fund) >"$npmlog" 2>&1; then
            show_log_tail "$npmlog"
            die "npm ci in edge/ failed"
        fi
        printf '%s\n' "$want" >"$marker"
        log "node tools: installed"
    fi
    local bin="$edge/node_modules/.bin" exe
    for exe in wrangler wasm-opt esbuild aws-ses-v2-local; do
        [[ -x $bin/$exe ]] || die "node tools: $bin/$exe missing (rm -rf edge/node_modules and rerun)"
    done
    export WASM_OPT_BIN="$bin/wasm-opt"
    export ESBUILD_BIN="$bin/esbuild"
    export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false
    export WRANGLER_HIDE_BANNER=true CLOUDFLARE_CF_FETCH_ENABLED=false
    write_env tools-node \
        "WASM_OPT_BIN=$WASM_OPT_BIN" "ESBUILD_BIN=$ESBUILD_BIN" \
        WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false \
        WRANGLER_HIDE_BANNER=true CLOUDFLARE_CF_FETCH_ENABLED=false
}

# The wasm-bindgen version pinned in Cargo.lock (empty when there is none).
locked_wasm_bindgen_version() {
    local lock="$PROMO_REPO_ROOT/Cargo.lock"
    [[ -f $lock ]] || return 0
    awk '
        /^\[\[package\]\]/ { in_wb = 0 }
        /^name = "wasm-bindgen"$/ { in_wb = 1; next }
        in_wb && /^version = / { gsub(/"/, "", $3); print $3; exit }
    ' "$lock"
}

# cargo_install_pinned BIN CRATE VERSION: install unless `BIN --version` shows VERSION.
cargo_install_pinned() {
    local bin=$1 crate=$2 version=$3 have=""
    if command -v "$bin" >/dev/null 2>&1; then
        have="$("$bin" --version 2>/dev/null | head -n1 || true)"
    fi
    if [[ $have =~ (^|[^0-9.])${version//./\\.}([^0-9.]|$) ]]; then
        log "rust tools: $bin $version present"
        return 0
    fi
    local clog="$PROMO_TOOLS_DIR/cargo-install-$crate.log"
    mkdir -p "$PROMO_TOOLS_DIR"
    log "rust tools: cargo install $crate --version $version (have: ${have:-none}; takes minutes once; log: $clog)"
    if ! cargo install "$crate" --version "$version" >"$clog" 2>&1; then
        show_log_tail "$clog"
        die "cargo install $crate --version $version failed"
    fi
    have="$("$bin" --version 2>/dev/null | head -n1 || true)"
    [[ $have == *"$version"* ]] || die "after cargo install, '$bin --version' says '$have', not $version (is ~/.cargo/bin first on PATH?)"
}

ensure_rust_tools() {
    case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) [[ -d $HOME/.cargo/bin ]] && PATH="$HOME/.cargo/bin:$PATH" ;;
    esac
    export PATH
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup"
    command -v rustup >/dev/null 2>&1 || die "rustup not found: the wasm32 target is added with rustup"
    local installed
    installed="$(rustup target list --installed)"
    # wasm32 for the worker; aarch64 for the Lambdas (template.yaml deploys arm64).
    local target
    for target in wasm32-unknown-unknown aarch64-unknown-linux-gnu; do
        if grep -qx "$target" <<<"$installed"; then
            log "rust tools: target $target present"
        else
            log "rust tools: rustup target add $target"
            rustup target add "$target" >&2 || die "rustup target add $target failed"
        fi
    done
    installed="$(rustup component list --installed)"
    local comp
    for comp in rustfmt clippy; do
        if ! grep -q "^$comp" <<<"$installed"; then
            log "rust tools: rustup component add $comp"
            rustup component add "$comp" >&2 || die "rustup component add $comp failed"
        fi
    done
    cargo_install_pinned worker-build worker-build "$PROMO_WORKER_BUILD_VERSION"
    local wb
    wb="$(locked_wasm_bindgen_version)"
    [[ -n $wb ]] || die "no wasm-bindgen in $PROMO_REPO_ROOT/Cargo.lock: the wasm-bindgen CLI must match the locked crate (commit Cargo.lock)"
    cargo_install_pinned wasm-bindgen wasm-bindgen-cli "$wb"
    WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
    export WASM_BINDGEN_BIN
    write_env tools-rust "WASM_BINDGEN_BIN=$WASM_BINDGEN_BIN"
}

ensure_browser() {
    local chromium=/usr/bin/chromium aptlog="$PROMO_TEST_STATE/apt-chromium.log"
    ensure_state_dir
    if [[ -x $chromium ]]; then
        log "browser: $chromium present"
    else
        command -v apt-get >/dev/null 2>&1 || die "chromium is missing and apt-get is not available: install Chromium at $chromium"
        log "browser: apt-get install -y chromium (log: $aptlog)"
        if ! apt-get install -y chromium >"$aptlog" 2>&1; then
            apt-get update >>"$aptlog" 2>&1 || true
            if ! apt-get install -y chromium >>"$aptlog" 2>&1; then
                show_log_tail "$aptlog"
                die "apt-get install -y chromium failed"
            fi
        fi
        [[ -x $chromium ]] || die "apt-get installed chromium but $chromium is not there"
    fi
    export PROMO_CHROMIUM=$chromium
    write_env tools-browser "PROMO_CHROMIUM=$chromium"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    case "${1:-all}" in
    all) ensure_python_tools && ensure_sam_cli && ensure_node_tools && ensure_rust_tools && ensure_browser ;;
    python) ensure_python_tools && ensure_sam_cli ;;
    node) ensure_node_tools ;;
    rust) ensure_rust_tools ;;
    browser) ensure_browser ;;
    *) die "usage: $0 [all|python|node|rust|browser]" ;;
    esac
fi
