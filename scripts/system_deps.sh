#!/usr/bin/env bash
# Debian packages corral needs (the KenLM build): installed with apt-get when missing and running as
# root; otherwise a clear message listing what to install. Idempotent.
set -euo pipefail
PKGS=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev
      zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
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
echo "==> apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
