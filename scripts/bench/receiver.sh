#!/usr/bin/env bash
# Durable webhook acknowledgements per second: the release daemon vs nginx
# returning a static 200, same wrk script, same machine, same run.
#   scripts/bench/receiver.sh [DURATION]        (needs wrk and nginx: apt-get install wrk nginx-light)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
duration=${1:-15s}
out=scripts/bench/out
mkdir -p "$out"
rm -rf "$out/receiver-data" "$out/nginx"
mkdir -p "$out/nginx"

# A ~3.7 KB body shaped like Jobylon's candidate/new example.
python3 - "$out/body.json" <<'PY'
import json, sys
event = json.load(open("Tests/JSONTests/Fixtures/candidate-new.json"))
json.dump(event, open(sys.argv[1], "w"), ensure_ascii=False, indent=2)
PY
ls -l "$out/body.json"

[ -n "${SKIP_BUILD:-}" ] || swift build -c release --product jobylon-bridge >/dev/null
export TOKEN=bench-token-0123456789
export BODY_FILE="$out/body.json"

answering_nginx "$PWD/$out/nginx" 18089 200 '{"status":"stored","id":1}'
trap 'stop_nginx "$PWD/$out/nginx"; kill $daemon 2>/dev/null || true' EXIT

JOBYLON_BRIDGE_TOKEN=$TOKEN .build/release/jobylon-bridge serve --listen 127.0.0.1:18088 --data-dir "$out/receiver-data" --log-level error &
daemon=$!
for _ in $(seq 100); do [ -f "$out/receiver-data/listen-address" ] && break; sleep 0.1; done

echo "== nginx static 200"
wrk -t2 -c32 -d"$duration" --latency -s scripts/bench/receiver.lua http://127.0.0.1:18089/ | tee "$out/nginx.txt"
echo "== jobylon-bridge (durable acks)"
wrk -t2 -c32 -d"$duration" --latency -s scripts/bench/receiver.lua http://127.0.0.1:18088/ | tee "$out/bridge.txt"
sleep 1
stored=$(sqlite3 "$out/receiver-data/bridge.sqlite" "select count(*) from inbox")
echo "rows stored: $stored"
