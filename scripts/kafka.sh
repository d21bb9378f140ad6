#!/usr/bin/env bash
# kafka.sh: a real, single-node Apache Kafka (KRaft, combined broker and
# controller) for local runs and integration tests. No container engine needed:
# the broker's jars come from Maven Central through scripts/kafka/pom.xml.
#
#   scripts/kafka.sh fetch                 resolve the jars into .cache/kafka (idempotent)
#   scripts/kafka.sh run [--port P] [--dir D]
#                                          format storage in D (a new temp dir by default)
#                                          and run the broker in the foreground on 127.0.0.1:P
#                                          (default 9092); SIGTERM stops it cleanly.
#   scripts/kafka.sh classpath             print the broker's classpath
#
# Environment: SAMSA_KAFKA_CACHE (where the jars go), SAMSA_KAFKA_FULL_JIT=1
# (benchmarks), SAMSA_KAFKA_PROPS (extra server.properties lines).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pom="$root/scripts/kafka/pom.xml"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
cache="${SAMSA_KAFKA_CACHE:-$root/.cache/kafka}/$version"

fetch() {
  if [[ -f "$cache/.complete" && "$cache/.complete" -nt "$pom" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn not found; install Maven (apt-get install maven)" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka.sh: java not found; install a JDK 17+" >&2; exit 1; }
  echo "kafka.sh: resolving Apache Kafka $version from Maven Central into $cache" >&2
  rm -rf "$cache.tmp"
  mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$cache.tmp/libs" >&2
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
  touch "$cache/.complete"
}

classpath() {
  fetch
  local cp=""
  for j in "$cache"/libs/*.jar; do cp="${cp:+$cp:}$j"; done
  echo "$cp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

run() {
  local port=9092 dir=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) port="$2"; shift 2 ;;
      --dir) dir="$2"; shift 2 ;;
      *) echo "kafka.sh run: unknown argument $1" >&2; exit 2 ;;
    esac
  done
  [[ -n "$dir" ]] || dir=$(mktemp -d -t samsa-kafka.XXXXXX)
  mkdir -p "$dir"
  local cp; cp=$(classpath)
  local cport; cport=$(free_port)
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
# A produce in a transaction begun right after the previous commit waits,
# on the broker, for the previous markers; retry that every 2 ms rather
# than 20 (transactional stages back to back would add ~20 ms each).
add.partitions.to.txn.retry.backoff.ms=2
log.segment.bytes=67108864
${SAMSA_KAFKA_PROPS:-}
PROPS
  cat > "$dir/log4j2.properties" <<'PROPS'
rootLogger.level=WARN
rootLogger.appenderRef.stderr.ref=STDERR
appender.stderr.type=Console
appender.stderr.name=STDERR
appender.stderr.target=SYSTEM_ERR
appender.stderr.layout.type=PatternLayout
appender.stderr.layout.pattern=[kafka %d{HH:mm:ss.SSS}] %p %c{1}: %m%n
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
PROPS
  # Tests want a broker up fast: the C1 compiler only (TieredStopAtLevel=1)
  # starts in half the time. Benchmarks want the steady state of a real
  # broker: SAMSA_KAFKA_FULL_JIT=1 (make bench) lets the JIT optimise fully.
  local jit=(-XX:TieredStopAtLevel=1)
  [[ "${SAMSA_KAFKA_FULL_JIT:-}" == 1 ]] && jit=()
  # The G1 settings of Kafka's own start script (kafka-run-class.sh):
  # short pauses matter more to a broker than collector throughput.
  local jvm=(-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
             -XX:+ExplicitGCInvokesConcurrent "${jit[@]}" -Xshare:auto
             -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties")
  if [[ ! -f "$dir/data/meta.properties" ]]; then
    local id; id=$(python3 -c 'import base64,uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
    # --cluster-id=ID, not -t ID: a base64url id can start with "-", which
    # the tool's argument parser would take for an option (1 start in 64).
    java "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format --cluster-id="$id" --config="$dir/server.properties" >/dev/null
  fi
  echo "kafka.sh: broker on 127.0.0.1:$port, data in $dir" >&2
  exec java "${jvm[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties"
}

case "${1:-}" in
  fetch) fetch ;;
  classpath) classpath ;;
  run) shift; run "$@" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
