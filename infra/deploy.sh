#!/usr/bin/env bash
# One deploy command per stage: docs/operators/deploy.md's steps, in its order, idempotently
# (every step checks what exists first and keeps it; running it again changes nothing that
# is already right).
#
#   infra/deploy.sh --stage staging|prod [--dry-run] [--teardown] [--yes]
#
#   --dry-run    print each step, what it would check and change; offline: nothing is
#                called that needs the network or an account (those calls are printed as
#                what would run). Prerequisites are still checked and stop it.
#   --teardown   delete the stage's stack (its table is retained) and Worker.
#   --yes        do not ask before changing (or deleting) production.
#
# The stack's parameters, from the environment:
#   AWS_REGION (required)       the stage's region (credentials: the AWS CLI's chain, AWS_PROFILE)
#   PUBLIC_URL (required)       the shop's public origin on this stage (the Worker's route)
#   CLOUDFLARE_ACCOUNT_ID       the Worker's account (wrangler reads it too); with it, the
#                               stack republishes sold-out price books to the KV namespace
#   CLOUDFLARE_API_TOKEN        wrangler's token (real runs); stored as the stack's KV token secret
#   ALARM_EMAIL                 where alarms are mailed (optional)
#   EVENTS_MAIL_FROM            the verified SES sender of limited events' notices (optional)
#   SECRET_PREFIX               Secrets Manager names' prefix (default promo/<stage>)
#
# Stops with a clear message at the first missing prerequisite: a tool (aws, sam, cargo
# lambda, wrangler, openssl, python3), a parameter, credentials, the KV namespace's id.
# What it cannot do for you (SES identity and production access, the providers' webhook
# URLs and secrets) is printed at the end as the runbook's manual steps.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STAGE="" DRY=0 TEARDOWN=0 YES=0
while (($#)); do
    case "$1" in
    --stage)
        STAGE="${2:-}"
        shift
        ;;
    --stage=*) STAGE="${1#--stage=}" ;;
    --dry-run) DRY=1 ;;
    --teardown) TEARDOWN=1 ;;
    --yes) YES=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "deploy: unknown argument: $1 (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done

say() { printf '%s\n' "$*"; }
die() {
    printf 'deploy: STOPPED: %s\n' "$*" >&2
    exit 1
}
N=0
step() {
    N=$((N + 1))
    say ""
    say "== step $N: $*"
}
# run CMD...: runs it, or on a dry run prints it as what would run.
run() {
    if ((DRY)); then
        say "   would run: $*"
    else
        say "   running: $*"
        "$@"
    fi
}

# The stages: template.yaml's Stage parameter (AllowedValues), which promoctl's --env and
# wrangler.toml's environments repeat (infra/tests/it/env_add.rs holds the three together).
mapfile -t STAGES < <(awk '/^  Stage:/ {s=1} s && /AllowedValues:/ {gsub(/.*\[|\].*/, ""); gsub(/, */, "\n"); print; exit}' template.yaml)
((${#STAGES[@]})) || die "template.yaml has no Stage parameter with AllowedValues"
[[ -n $STAGE ]] || die "--stage is required: one of ${STAGES[*]}"
printf '%s\n' "${STAGES[@]}" | grep -qx -- "$STAGE" || die "--stage $STAGE is not a stage: one of ${STAGES[*]}"

STACK="promo-$STAGE"
SECRET_PREFIX="${SECRET_PREFIX:-promo/$STAGE}"
WRANGLER=(wrangler)
if ! command -v wrangler >/dev/null 2>&1 && [[ -x $ROOT/edge/node_modules/.bin/wrangler ]]; then
    WRANGLER=("$ROOT/edge/node_modules/.bin/wrangler")
fi

say "deploy: stage $STAGE, stack $STACK$( ((DRY)) && echo ' (dry run: nothing is changed)')$( ((TEARDOWN)) && echo ', TEARDOWN')"

step "prerequisites: tools"
need() {
    local exe=$1 how=$2
    if [[ $exe == wrangler ]]; then
        command -v "${WRANGLER[0]}" >/dev/null 2>&1 || die "wrangler is not installed: $how"
    else
        command -v "$exe" >/dev/null 2>&1 || die "$exe is not on PATH: $how"
    fi
    say "   $exe: $(command -v "${exe/wrangler/${WRANGLER[0]}}")"
}
need aws "install the AWS CLI (pip install awscli, or https://aws.amazon.com/cli/)"
need sam "install the SAM CLI (pip install aws-sam-cli)"
need python3 "install Python 3.10+"
need wrangler "npm i -g wrangler (or (cd edge && npm ci))"
if ((!TEARDOWN)); then
    need cargo-lambda "pip install cargo-lambda (it brings zig for the arm64 build)"
    need openssl "install openssl (secrets are generated with it)"
fi

step "prerequisites: parameters"
[[ -n ${AWS_REGION:-} ]] || die "AWS_REGION is not set: the region of stage $STAGE (e.g. ap-northeast-2)"
say "   AWS_REGION=$AWS_REGION"
if ((!TEARDOWN)); then
    [[ -n ${PUBLIC_URL:-} ]] || die "PUBLIC_URL is not set: the shop's public origin on stage $STAGE (e.g. https://promo-$STAGE.shop.example)"
    [[ $PUBLIC_URL == https://* ]] || die "PUBLIC_URL must be https:// (it is $PUBLIC_URL)"
    say "   PUBLIC_URL=$PUBLIC_URL"
    say "   CLOUDFLARE_ACCOUNT_ID=${CLOUDFLARE_ACCOUNT_ID:-<unset: the stack will not republish sold-out price books to KV>}"
    say "   ALARM_EMAIL=${ALARM_EMAIL:-<unset: alarms go to the topic only>}"
    say "   EVENTS_MAIL_FROM=${EVENTS_MAIL_FROM:-<unset: limited events send no notices>}"
fi

step "prerequisites: credentials (AWS, Cloudflare)"
if ((DRY)); then
    run aws sts get-caller-identity
    run "${WRANGLER[@]}" whoami
else
    aws sts get-caller-identity --output text --query Account >/dev/null 2>&1 ||
        die "no AWS credentials for region $AWS_REGION (aws sts get-caller-identity failed): aws configure, or set AWS_PROFILE"
    "${WRANGLER[@]}" whoami >/dev/null 2>&1 ||
        die "wrangler is not logged in: set CLOUDFLARE_API_TOKEN (or run wrangler login)"
    say "   ok"
fi

if ((!YES && !DRY)) && [[ $STAGE == prod ]]; then
    [[ -t 0 ]] || die "changing production needs --yes when there is no terminal to ask on"
    read -r -p "$( ((TEARDOWN)) && echo DELETE || echo deploy) PRODUCTION ($STACK in $AWS_REGION)? type prod to go on: " answer
    [[ $answer == prod ]] || die "not confirmed: nothing changed"
fi

if ((TEARDOWN)); then
    step "delete the stack $STACK (the table promo-$STAGE is retained: DeletionPolicy Retain)"
    run sam delete --stack-name "$STACK" --region "$AWS_REGION" --no-prompts
    step "delete the Worker of stage $STAGE"
    run "${WRANGLER[@]}" delete --env "$STAGE" --force
    say ""
    say "deploy: teardown of $STAGE $( ((DRY)) && echo 'would be done' || echo done). Left on purpose: the table promo-$STAGE,"
    say "        the secrets under $SECRET_PREFIX/, the KV namespace (delete them by hand if meant)."
    exit 0
fi

step "secrets in Secrets Manager (generated, never typed or printed; existing ones kept)"
# webhook-secret-standard: the Standard Webhooks secret the Worker verifies and the shop signs
# with (the shop reads it here: aws secretsmanager get-secret-value).
SECRETS=(issuer-secret shopper-jwt-secret unsubscribe-secrets webhook-secret-standard)
# Standard Webhooks secrets are `whsec_` + base64; the others plain random bytes.
whsec() { [[ $1 == issuer-secret || $1 == webhook-secret-standard ]]; }
for s in "${SECRETS[@]}"; do
    name="$SECRET_PREFIX/$s"
    if ((DRY)); then
        say "   would check: aws secretsmanager describe-secret --secret-id $name"
        say "   would create it if missing, with a generated value ($(whsec "$s" && echo 'whsec_ + 32 random bytes' || echo '48 random bytes'))"
    elif aws secretsmanager describe-secret --secret-id "$name" >/dev/null 2>&1; then
        say "   $name: exists, kept"
    else
        if whsec "$s"; then value="whsec_$(openssl rand -base64 32 | tr -d '\n')"; else value="$(openssl rand -base64 48 | tr -d '\n')"; fi
        aws secretsmanager create-secret --name "$name" --secret-string "$value" >/dev/null
        unset value
        say "   $name: created"
    fi
done
CF_TOKEN_SECRET=""
if [[ -n ${CLOUDFLARE_ACCOUNT_ID:-} ]]; then
    CF_TOKEN_SECRET="$SECRET_PREFIX/cloudflare-api-token"
    if ((DRY)); then
        say "   would check: aws secretsmanager describe-secret --secret-id $CF_TOKEN_SECRET"
        say "   would create it if missing from CLOUDFLARE_API_TOKEN (Workers KV Storage: Edit)"
    elif aws secretsmanager describe-secret --secret-id "$CF_TOKEN_SECRET" >/dev/null 2>&1; then
        say "   $CF_TOKEN_SECRET: exists, kept"
    else
        [[ -n ${CLOUDFLARE_API_TOKEN:-} ]] || die "CLOUDFLARE_API_TOKEN is not set: the stack's KV token secret $CF_TOKEN_SECRET is made from it"
        aws secretsmanager create-secret --name "$CF_TOKEN_SECRET" --secret-string "$CLOUDFLARE_API_TOKEN" >/dev/null
        say "   $CF_TOKEN_SECRET: created"
    fi
fi

step "the Worker's KV namespace (wrangler.toml [[env.$STAGE.kv_namespaces]])"
KV_ID="$(python3 - "$STAGE" <<'EOF'
import sys, tomllib
env = tomllib.load(open("wrangler.toml", "rb")).get("env", {}).get(sys.argv[1], {})
ids = [ns.get("id", "") for ns in env.get("kv_namespaces", []) if ns.get("binding") == "PROMO_KV"]
print(ids[0] if ids else "")
EOF
)"
if [[ -z $KV_ID || $KV_ID =~ ^0+$ ]]; then
    if ((DRY)); then
        say "   wrangler.toml has no real PROMO_KV id for $STAGE (${KV_ID:-none})"
        run "${WRANGLER[@]}" kv namespace create PROMO_KV --env "$STAGE"
        say "   then it would stop for you to put the printed id in wrangler.toml [[env.$STAGE.kv_namespaces]] (the rest below assumes it)"
    else
        run "${WRANGLER[@]}" kv namespace create PROMO_KV --env "$STAGE"
        die "put the id printed above in wrangler.toml [[env.$STAGE.kv_namespaces]] (id = ...), commit it, and run again"
    fi
else
    say "   PROMO_KV = $KV_ID (kept)"
fi

step "build the functions (sam build: cargo lambda, arm64)"
run sam build --template-file template.yaml

step "deploy the stack $STACK (a change set; no change: nothing happens)"
PARAMS=(Stage="$STAGE" PublicUrl="$PUBLIC_URL"
    IssuerSecretName="$SECRET_PREFIX/issuer-secret"
    ShopperJwtSecretName="$SECRET_PREFIX/shopper-jwt-secret"
    UnsubscribeSecretName="$SECRET_PREFIX/unsubscribe-secrets")
[[ -n ${ALARM_EMAIL:-} ]] && PARAMS+=(AlarmEmail="$ALARM_EMAIL")
[[ -n ${EVENTS_MAIL_FROM:-} ]] && PARAMS+=(EventsMailFrom="$EVENTS_MAIL_FROM")
if [[ -n $CF_TOKEN_SECRET ]]; then
    PARAMS+=(CloudflareAccountId="$CLOUDFLARE_ACCOUNT_ID" CloudflareKvNamespaceId="${KV_ID:-<the id of the step before>}"
        CloudflareApiTokenSecretName="$CF_TOKEN_SECRET")
fi
run sam deploy --stack-name "$STACK" --region "$AWS_REGION" --resolve-s3 \
    --capabilities CAPABILITY_IAM CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset --no-confirm-changeset \
    --parameter-overrides "${PARAMS[@]}"

# output KEY: a stack output (real runs only).
output() {
    aws cloudformation describe-stacks --stack-name "$STACK" --region "$AWS_REGION" \
        --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}

step "the Worker's AWS identity (EdgeEnqueueUser's access key, once) and its secrets"
if ((DRY)); then
    run "${WRANGLER[@]}" secret list --env "$STAGE"
    say "   if PROMO_AWS_ACCESS_KEY_ID is missing there: aws iam create-access-key --user-name <output EdgeEnqueueUserName>,"
    say "   then wrangler secret put PROMO_AWS_ACCESS_KEY_ID / PROMO_AWS_SECRET_ACCESS_KEY --env $STAGE (from stdin, never printed)"
    say "   if PROMO_WEBHOOK_SECRET_STANDARD is missing: the value of $SECRET_PREFIX/webhook-secret-standard, put the same way"
else
    have="$("${WRANGLER[@]}" secret list --env "$STAGE" 2>/dev/null || echo '[]')"
    if grep -q PROMO_AWS_ACCESS_KEY_ID <<<"$have"; then
        say "   PROMO_AWS_ACCESS_KEY_ID: set, kept"
    else
        user="$(output EdgeEnqueueUserName)"
        read -r key secret < <(aws iam create-access-key --user-name "$user" --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
        printf '%s' "$key" | "${WRANGLER[@]}" secret put PROMO_AWS_ACCESS_KEY_ID --env "$STAGE" >/dev/null
        printf '%s' "$secret" | "${WRANGLER[@]}" secret put PROMO_AWS_SECRET_ACCESS_KEY --env "$STAGE" >/dev/null
        unset key secret
        say "   PROMO_AWS_ACCESS_KEY_ID / PROMO_AWS_SECRET_ACCESS_KEY: a new key of $user, put"
    fi
    if grep -q PROMO_WEBHOOK_SECRET_STANDARD <<<"$have"; then
        say "   PROMO_WEBHOOK_SECRET_STANDARD: set, kept"
    else
        aws secretsmanager get-secret-value --secret-id "$SECRET_PREFIX/webhook-secret-standard" \
            --query SecretString --output text |
            "${WRANGLER[@]}" secret put PROMO_WEBHOOK_SECRET_STANDARD --env "$STAGE" >/dev/null
        say "   PROMO_WEBHOOK_SECRET_STANDARD: put from $SECRET_PREFIX/webhook-secret-standard (the shop signs with the same)"
    fi
fi

step "deploy the Worker (its vars from the stack's outputs)"
if ((DRY)); then
    run "${WRANGLER[@]}" deploy --env "$STAGE" --var "PROMO_PAYMENT_QUEUE_URL:<output PaymentEventsQueueUrl>" \
        --var "PROMO_API_URL:<output ApiFunctionUrl>" --var "PROMO_AWS_REGION:$AWS_REGION"
else
    run "${WRANGLER[@]}" deploy --env "$STAGE" --var "PROMO_PAYMENT_QUEUE_URL:$(output PaymentEventsQueueUrl)" \
        --var "PROMO_API_URL:$(output ApiFunctionUrl)" --var "PROMO_AWS_REGION:$AWS_REGION"
fi

step "promoctl finds the stage (its profile from the stack's outputs)"
if command -v promoctl >/dev/null 2>&1; then
    run promoctl env add "$STAGE" --stack "$STACK"
else
    say "   promoctl is not on PATH: later, cargo install --locked --path infra --features prod; promoctl env add $STAGE"
fi

step "smoke check"
run curl -fsS "$PUBLIC_URL/healthz"
say "   then, by hand (docs/operators/deploy.md, 8.): a signed test webhook the issuer consumes, a price read"

say ""
say "deploy: stage $STAGE $( ((DRY)) && echo 'would be deployed' || echo deployed). Manual steps left (docs/operators/deploy.md):"
say "   - SES: verify the sender domain of campaign email${EVENTS_MAIL_FROM:+ and $EVENTS_MAIL_FROM}; ask for production access (step 6)"
say "   - PortOne and Stripe: webhook URLs $PUBLIC_URL/v1/webhooks/portone and .../stripe; their secrets:"
say "     wrangler secret put PROMO_WEBHOOK_SECRET_PORTONE|PROMO_WEBHOOK_SECRET_STRIPE|PROMO_PORTONE_API_SECRET --env $STAGE (step 7)"
