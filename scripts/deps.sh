#!/usr/bin/env bash
# deps.sh: installs what the integration tests need from the operating
# system: a PostgreSQL server (Debian's package). It changes nothing when
# everything is there already.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "deps.sh: please install: ${need[*]} (apt-get install ${need[*]})" >&2
  exit 1
fi
echo "deps.sh: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
