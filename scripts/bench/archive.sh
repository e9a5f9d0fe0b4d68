#!/usr/bin/env bash
# A 1 GiB CV-archive download through the daemon (libcurl multi, streaming to a
# temp file with SHA-256 on the fly, fsync, rename, sidecar, store record) next
# to the curl command line fetching the same file from the same nginx, in the
# same run. Peak resident memory of the daemon is read from /proc (VmHWM)
# before and after the download: it must stay flat.
#   scripts/bench/archive.sh [SIZE_MIB]     (default 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
out=$PWD/scripts/bench/out/archive
rm -rf "$out" && mkdir -p "$out/www" "$out/nginx" "$out/maps" && mkdir -m 700 "$out/data"
swift build -c release --product jobylon-bridge >/dev/null
head -c "${size_mib}M" /dev/urandom > "$out/www/big.bin"
expected=$(sha256sum "$out/www/big.bin" | cut -d' ' -f1)
cat > "$out/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $out/nginx/nginx.pid;
error_log $out/nginx/error.log;
events { worker_connections 64; }
http { access_log off; sendfile on; server { listen 127.0.0.1:18092; root $out/www; } }
NGINX
nginx -c "$out/nginx/nginx.conf"
trap 'nginx -c "$out/nginx/nginx.conf" -s stop 2>/dev/null || true; kill $daemon 2>/dev/null || true' EXIT
url="http://127.0.0.1:18092/big.bin?AWSAccessKeyId=K&Signature=abc%2Bdef%3D&Expires=$(( $(date +%s) + 3600 ))"
cat "$out/www/big.bin" > /dev/null   # warm the page cache for every contender alike

seconds() { python3 -c "import sys; print(f'{float(sys.argv[1]):.2f}')" "$1"; }
mibps() { python3 -c "import sys; print(f'{$size_mib / float(sys.argv[1]):.0f}')" "$1"; }

echo "== curl -o (no hash, no fsync)"
/usr/bin/time -f "%e %M" -o "$out/time" curl -s -o "$out/curl.bin" "$url"
read -r t rss < "$out/time"; echo "  $(seconds "$t") s, $(mibps "$t") MiB/s, peak RSS $((rss / 1024)) MiB"
rm -f "$out/curl.bin"

echo "== curl | tee file | sha256sum, then fsync (what the archive does)"
start=$(date +%s.%N)
curl -s "$url" | tee "$out/curl.bin" | sha256sum > "$out/curl.sha"
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)" "$out/curl.bin"
t=$(python3 -c "import time,sys; print(time.time() - float(sys.argv[1]))" "$start")
echo "  $(seconds "$t") s, $(mibps "$t") MiB/s, sha256 ok: $([ "$(cut -d' ' -f1 "$out/curl.sha")" = "$expected" ] && echo yes || echo NO)"
rm -f "$out/curl.bin"

echo "== jobylon-bridge archive job (libcurl multi + SHA-256 + fsync + rename + record)"
sed -e 's/"max_bytes": 52428800/"max_bytes": 17179869184/' mappings/cv-archive.json > "$out/maps/cv-archive.json"
export JOBYLON_BRIDGE_TOKEN=bench-token-0123456789
ARCHIVE_ALLOWED_HOSTS=127.0.0.1 JOBYLON_BRIDGE_ARCHIVE_FREE_SPACE_FLOOR_MB=64 \
  .build/release/jobylon-bridge serve --listen 127.0.0.1:18093 --data-dir "$out/data" --mappings "$out/maps" --log-level error &
daemon=$!
for _ in $(seq 100); do [ -f "$out/data/listen-address" ] && break; sleep 0.1; done
before=$(awk '/VmHWM/ {print $2}' /proc/$daemon/status)
python3 - "$url" > "$out/body.json" <<'PY'
import json, sys
event = json.load(open("Tests/EndToEndTests/Fixtures/candidate-new.json"))
files = event["data"]["candidate"]["files"]
for key in files: files[key] = None
files["cv"] = sys.argv[1]
event["data"]["candidate"]["answers"] = []
json.dump(event, sys.stdout)
PY
curl -s -o /dev/null -w "  webhook: HTTP %{http_code}\n" -H "Authorization: Bearer $JOBYLON_BRIDGE_TOKEN" --data-binary @"$out/body.json" http://127.0.0.1:18093/webhooks/jobylon
while [ "$(sqlite3 "$out/data/bridge.sqlite" "select count(*) from jobs where kind = 'archive' and state in ('done','dead','expired')")" != "1" ]; do sleep 0.05; done
after=$(awk '/VmHWM/ {print $2}' /proc/$daemon/status)
sqlite3 "$out/data/bridge.sqlite" "select state, coalesce(last_error, '') from jobs where kind = 'archive'" | sed 's/^/  job: /'
ms=$(sqlite3 "$out/data/bridge.sqlite" "select updated_at - created_at from jobs where kind = 'archive'")
t=$(python3 -c "print($ms / 1000)")
sha=$(sqlite3 "$out/data/bridge.sqlite" "select sha256 from archive_files")
echo "  $(seconds "$t") s webhook-to-archived, $(mibps "$t") MiB/s, sha256 ok: $([ "$sha" = "$expected" ] && echo yes || echo NO)"
echo "  daemon peak RSS: $((before / 1024)) MiB before, $((after / 1024)) MiB after the download"
