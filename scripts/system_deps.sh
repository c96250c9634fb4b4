#!/usr/bin/env bash
# Debian packages corral needs (the KenLM build): installed with apt-get when missing and running as
# root; otherwise a clear message listing what to install. Idempotent.
# Optional: Debian's `chromium`, the headless browser tests/test_report.py loads the report in; installed
# when running as root (CORRAL_NO_CHROMIUM=1 skips it), else the test is skipped with a message.
set -euo pipefail
PKGS=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev
      zlib1g-dev libbz2-dev liblzma-dev)
OPTIONAL=(chromium)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in "${PKGS[@]}"; do
  installed "$p" || missing+=("$p")
done
optional=()
if [ "${CORRAL_NO_CHROMIUM:-0}" != 1 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  for p in "${OPTIONAL[@]}"; do
    installed "$p" || optional+=("$p")
  done
fi
[ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0
if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "corral needs these system packages (Debian names): ${missing[*]}" >&2
    echo "Install their equivalents with your package manager, then re-run." >&2
    exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "corral needs these Debian packages: ${missing[*]}" >&2
    echo "Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#optional[@]} -gt 0 ]; then
  # Optional: a distribution without the package (or a failed download) only skips the browser test.
  echo "==> apt-get install ${optional[*]} (optional: the report's headless-browser test)"
  apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
    || echo "warning: could not install ${optional[*]}; tests/test_report.py will skip its browser check" >&2
fi
