#!/usr/bin/env bash
# The environment the service-backed tests read, from what the service scripts
# and infra/tools.sh recorded under $PROMO_TEST_STATE.
#
#   source infra/services/env.sh     export it into the current shell
#   infra/services/env.sh            print it as `export ...` lines
#
# Exports PROMO_TEST_RABBITMQ_URL, PROMO_TEST_DYNAMODB_ENDPOINT,
# PROMO_TEST_SES_ENDPOINT (for the services that are running), the tool paths
# (WASM_OPT_BIN, ESBUILD_BIN, WASM_BINDGEN_BIN, PATH with the tools venv first,
# WRANGLER_*), and static AWS credentials for SDK clients.

# shellcheck source=infra/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

promo_env_lines() {
    local f
    for f in "$PROMO_TEST_STATE"/tools-*.env "$PROMO_TEST_STATE"/{rabbitmq,dynamodb,ses}.env; do
        if [[ -f $f ]]; then cat "$f"; fi
    done
    echo 'export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1'
    echo 'export AWS_EC2_METADATA_DISABLED=true'
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    promo_env_lines
else
    eval "$(promo_env_lines)"
fi
