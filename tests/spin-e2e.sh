#!/usr/bin/env bash
# The end-to-end suites (tests/e2e.rs, tests/e2e_executors.rs,
# tests/e2e_pipelines.rs) and the dag_executor example against a
# real `spin up` of the built app, through WQ_BASE_URL. Spin runs in its
# own process group on a free port with its own state directory, and the
# whole group is killed at the end.
#
# Without `spin` on PATH (or WQ_SPIN) this prints SKIPPED and succeeds,
# unless WQ_REQUIRE_SPIN is set (CI): then it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

spin="${WQ_SPIN:-spin}"
if ! command -v "$spin" >/dev/null 2>&1; then
  if [ -n "${WQ_REQUIRE_SPIN:-}" ] && [ "${WQ_REQUIRE_SPIN}" != 0 ]; then
    echo "spin-e2e: WQ_REQUIRE_SPIN is set but \`$spin\` is not on PATH" >&2
    exit 1
  fi
  echo "SKIPPED: \`$spin\` is not on PATH; the e2e suite against spin up did not run"
  exit 0
fi

# A free port: one nothing answers on.
port=""
for _ in $(seq 1 50); do
  candidate=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    port=$candidate
    break
  fi
done
[ -n "$port" ] || { echo "spin-e2e: no free port found" >&2; exit 1; }

dir=$(mktemp -d)
# Every node name reaches the echo executor (the dag_executor example's
# nodes are named for what they do, not for an executor).
SPIN_VARIABLE_EXECUTORS='{"echo":"http://echo.spin.internal/","fetch":"http://fetch.spin.internal/","*":"http://echo.spin.internal/"}' \
setsid "$spin" up --listen "127.0.0.1:$port" --state-dir "$dir/state" \
  --log-dir "$dir/logs" >"$dir/spin.log" 2>&1 &
group=$!
cleanup() {
  kill -KILL -- "-$group" 2>/dev/null || true
  wait "$group" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

healthy() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  head -n 1 <&3 | grep -q ' 200 '
}
for _ in $(seq 1 900); do
  if healthy 2>/dev/null; then break; fi
  if ! kill -0 "$group" 2>/dev/null; then
    echo "spin-e2e: spin up exited:" >&2
    cat "$dir/spin.log" >&2
    exit 1
  fi
  sleep 0.2
done
healthy 2>/dev/null || { echo "spin-e2e: spin up did not answer /healthz" >&2; cat "$dir/spin.log" >&2; exit 1; }

echo "spin-e2e: the e2e suites against spin up on 127.0.0.1:$port"
WQ_BASE_URL="http://127.0.0.1:$port" ${CARGO:-cargo} test --test e2e --test e2e_executors \
  --test e2e_pipelines -- --test-threads=1

echo "spin-e2e: the dag_executor example against spin up"
WQ_URL="http://127.0.0.1:$port" ${CARGO:-cargo} run --quiet --example dag_executor
