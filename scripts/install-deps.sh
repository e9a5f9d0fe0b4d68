#!/usr/bin/env bash
# Installs the system packages jobylon-bridge builds against, if missing.
# Debian/Ubuntu with Swift already installed; runs apt-get as root (or via sudo).
# --test adds the real peers the tests drive: LibreOffice Calc (imports the
# payroll files as a clerk would) and an OpenSSH server and client (SFTP drops).
# --bench adds the peers and load tools of scripts/bench/ (nginx answering 201,
# wrk, hyperfine, jq; the orjson script's package comes from PyPI).
set -euo pipefail
needed=(libcurl4-openssl-dev libsqlite3-dev pkg-config)
if [ "${1:-}" = "--test" ]; then
  needed+=(libreoffice-calc-nogui openssh-server openssh-client)
fi
if [ "${1:-}" = "--bench" ]; then
  needed+=(nginx wrk hyperfine jq)
  python3 -c 'import orjson' 2>/dev/null || python3 -m pip install -q orjson
fi
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
