#!/usr/bin/env bash
# Property-based tests of the HTTP API: schemathesis (the version pinned below) generates
# requests from /api/openapi.json against the real binary and runs every check: no server
# errors, no status codes or answers the document does not promise, schema-violating requests
# refused, schema-valid ones read (hooks.py), 405 with Allow for other methods, and the rest.
#
# It builds nothing: run `cargo build` first (scripts/test does). It starts
# target/debug/switchyard serve on a fresh SQLite database on a free 127.0.0.1 port, mints a
# token, runs schemathesis, stops the server and exits non-zero on any failure.
#
# Nothing the fuzzer sends may make the server reach beyond 127.0.0.1:
#   - the run goes into a network namespace of its own whose only interface is loopback
#     (`unshare --net`): no DNS server, no route anywhere else;
#   - the default SSRF policy stays on (no --allow-private-networks), so URLs naming loopback or
#     internal addresses are refused, and the mail and CRM providers' base URLs point at
#     127.0.0.1, refused by that policy before any connection;
#   - --no-workers: accepted events are queued, never delivered.
# Without a namespace (unshare not permitted), the two calls that connect at once
# (integrations-verify, mailers-test) are left out, and it says so.
#
# SCHEMATHESIS_EXAMPLES (examples per operation, default 50) and SCHEMATHESIS_SEED tune a run.
set -euo pipefail
version=4.32.5
self=$(realpath "$0")

if [ -z "${SWITCHYARD_FUZZ_NETNS:-}" ] && command -v ip >/dev/null && unshare --net --map-root-user true 2>/dev/null; then
  exec unshare --net --map-root-user env SWITCHYARD_FUZZ_NETNS=1 sh -c 'ip link set lo up && exec "$0" "$@"' "$self" "$@"
fi
cd "$(dirname "$self")/../.."
here=tests/schemathesis
exclude=()
if [ -z "${SWITCHYARD_FUZZ_NETNS:-}" ]; then
  echo "schemathesis: WARNING no network namespace (unshare --net not permitted); leaving out integrations-verify and mailers-test" >&2
  exclude=(--exclude-path /api/integrations-verify --exclude-path /api/mailers-test)
fi

binary=target/debug/switchyard
[ -x "$binary" ] || { echo "schemathesis: FAILED: $binary is missing; run cargo build first" >&2; exit 1; }
installed=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
[ "$installed" = "$version" ] || {
  echo "schemathesis: FAILED: schemathesis $version is needed (found: ${installed:-none}); pip install schemathesis==$version" >&2
  exit 1
}

work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

database="sqlite:$work/fuzz.db"
token=$("$binary" token create --account fuzz --database-url "$database" 2>/dev/null)
nowhere=https://127.0.0.1:9
SWITCHYARD_LOG=error "$binary" serve --listen 127.0.0.1:0 --database-url "$database" --no-workers --allow-http \
  --hubspot-base-url $nowhere --brevo-base-url $nowhere --mailgun-base-url $nowhere --mailgun-eu-base-url $nowhere \
  --mailjet-base-url $nowhere --mandrill-base-url $nowhere --sendgrid-base-url $nowhere --ses-endpoint $nowhere \
  >"$work/stdout" 2>"$work/stderr" &
server=$!
base=
for _ in $(seq 300); do
  base=$(sed -n 's/^switchyard listening on //p' "$work/stdout")
  [ -n "$base" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
[ -n "$base" ] || { cat "$work/stderr" >&2; echo "schemathesis: FAILED: the server did not start" >&2; exit 1; }

started=$SECONDS
status=0
(cd "$work" && SCHEMATHESIS_HOOKS="$OLDPWD/$here/hooks.py" schemathesis --config-file "$OLDPWD/$here/schemathesis.toml" run "$base/api/openapi.json" \
  --header "Authorization: Bearer $token" --checks all --max-examples "${SCHEMATHESIS_EXAMPLES:-50}" \
  --seed "${SCHEMATHESIS_SEED:-20261124}" --generation-database none --workers 2 --request-timeout 30 --no-color "${exclude[@]}") || status=$?
if ! kill -0 "$server" 2>/dev/null; then
  cat "$work/stderr" >&2
  echo "schemathesis: FAILED: the server died during the run" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "schemathesis: FAILED (exit $status) after $((SECONDS - started)) s; the failures and how to reproduce them are above" >&2
  exit "$status"
fi
echo "schemathesis: passed in $((SECONDS - started)) s (every operation, --checks all)"
