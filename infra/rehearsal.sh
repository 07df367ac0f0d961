#!/usr/bin/env bash
# CloudFormation rehearsal of template.yaml, offline (infra/test.sh runs it; fails loudly):
#
#   1. the SAM template translated to plain CloudFormation with aws-sam-translator, as
#      `sam deploy` hands it over (CodeUri as `sam package` leaves it, a region set), and
#      checked: every reference resolves, and what moto cannot create (alarms, function URLs,
#      the SES configuration set and event destination, SNS subscriptions and topic policy,
#      the scheduler) is checked on the translated template instead (rehearsal/translate.py);
#   2. the rest created on moto's CloudFormation (its own in-process server): the stack
#      completes; its table, queues, topics, functions, marketer policy and secrets exist;
#      with PROMOCTL_BIN (a promoctl built with --features prod), `promoctl env add staging`
#      reads its outputs and `promoctl --env staging` works on the stage
#      (rehearsal/deploy_on_moto.py).
#
#   infra/rehearsal.sh [OUT_DIR]     (default: $PROMO_TEST_STATE/rehearsal)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/tools.sh
source "$ROOT/infra/tools.sh"
PROMO_LOG_TAG=rehearsal

ensure_python_tools >/dev/null 2>&1 || ensure_python_tools
ensure_sam_cli >/dev/null 2>&1 || ensure_sam_cli
OUT="${1:-${PROMO_TEST_STATE:-$HOME/.cache/promo/test-state}/rehearsal}"
rm -rf "$OUT"
mkdir -p "$OUT"
export AWS_DEFAULT_REGION="${PROMO_REHEARSAL_REGION:-ap-northeast-2}"

"$(dirname "$PROMO_SAM")/python" "$ROOT/infra/rehearsal/translate.py" "$ROOT/template.yaml" "$OUT" ||
    die "template.yaml does not translate to the CloudFormation expected (see above)"
"$PROMO_VENV/bin/python" "$ROOT/infra/rehearsal/deploy_on_moto.py" "$OUT" ||
    die "the CloudFormation rehearsal on moto failed (see above; templates in $OUT)"
log "ok: translated template and stack outputs in $OUT"
