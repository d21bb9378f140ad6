#!/usr/bin/env bash
# with-kafka.sh CMD...: runs CMD with SAMSA_TEST_KAFKA pointing at a real
# Kafka broker started for it (unless SAMSA_TEST_KAFKA is already set), and
# stops the broker afterwards, whatever CMD's outcome.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ -n "${SAMSA_TEST_KAFKA:-}" ]]; then exec "$@"; fi

"$here/kafka.sh" fetch
dir=$(mktemp -d -t samsa-kafka.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
start=$(date +%s.%N)
setsid "$here/kafka.sh" run --port "$port" --dir "$dir/kafka" >"$dir/broker.log" 2>&1 &
pid=$!
stop() {
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT
for _ in $(seq 1 600); do
  if grep -q "Kafka Server started" "$dir/broker.log"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/broker.log" >&2; echo "with-kafka: broker exited" >&2; exit 1; fi
  sleep 0.1
done
grep -q "Kafka Server started" "$dir/broker.log" || { cat "$dir/broker.log" >&2; echo "with-kafka: broker not ready in 60s" >&2; exit 1; }
awk -v p="$port" -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "with-kafka: broker 127.0.0.1:%s ready in %.1fs\n", p, e-s > "/dev/stderr"}'
export SAMSA_TEST_KAFKA="127.0.0.1:$port"
"$@"
