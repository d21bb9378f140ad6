#!/usr/bin/env bash
# deps-ui.sh: installs what the dashboard's browser tests need (make
# test-ui): Debian's chromium, and playwright-core from tests/browser's
# package-lock.json (npm ci). The browser is never downloaded by npm.
# Separate from deps.sh so that other CI jobs do not pay for a browser.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps-ui.sh: please install chromium (apt-get install chromium)" >&2
    exit 1
  fi
  echo "deps-ui.sh: installing chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
command -v npm >/dev/null || { echo "deps-ui.sh: npm (Node.js 18 or newer) is needed" >&2; exit 1; }
if [[ ! -d tests/browser/node_modules/playwright-core ]] || [[ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]]; then
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
