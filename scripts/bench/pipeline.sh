#!/usr/bin/env bash
# The whole pipeline against its own front door: wrk posts unique hired
# candidates for a few seconds to the release daemon running the bundled
# mappings (five jobs per hire: payroll request, result card after it, CSV
# row, two archive jobs that end `expired`: the example's URLs expired in
# 2024), with PAYROLL_URL and JOBYLON_API_URL pointing at nginx answering 201.
# Then it waits until every acknowledged hire's last effect (the result card,
# after payroll) was delivered, and prints
#   acked/s      = webhooks acknowledged / seconds of posting (wrk's figure)
#   processed/s  = hires whose result card is done / (last result card done - first webhook received)
#   ratio        = processed/s / acked/s
#   scripts/bench/pipeline.sh [SECONDS_OF_POSTING] [CONNECTIONS]   (needs wrk, nginx, sqlite3)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
posting=${1:-5s}
connections=${2:-32}
out=$PWD/scripts/bench/out/pipeline
rm -rf "$out" && mkdir -p "$out/nginx" && mkdir -m 700 "$out/data"
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --product jobylon-bridge >/dev/null
answering_nginx "$out/nginx" 18092 201 '{"employeeId":"E-1"}'
trap 'stop_nginx "$out/nginx"; kill $daemon 2>/dev/null || true' EXIT
export TOKEN=bench-token-0123456789 BODY_FILE=$PWD/scripts/bench/out/body.json
[ -f "$BODY_FILE" ] || python3 -c "import json; json.dump(json.load(open('Tests/JSONTests/Fixtures/candidate-new.json')), open('$BODY_FILE','w'), indent=2)"
JOBYLON_BRIDGE_TOKEN=$TOKEN PAYROLL_URL=http://127.0.0.1:18092 PAYROLL_TOKEN=bench-payroll JOBYLON_API_URL=http://127.0.0.1:18092 \
    JOBYLON_API_KEY=bench-key EXPORT_DIR="$out/exports" \
    .build/release/jobylon-bridge serve --listen 127.0.0.1:18093 --data-dir "$out/data" --mappings mappings --log-level error 2> "$out/daemon.log" &
daemon=$!
for _ in $(seq 100); do [ -f "$out/data/listen-address" ] && break; sleep 0.1; done
wrk -t2 -c"$connections" -d"$posting" -s scripts/bench/receiver.lua http://127.0.0.1:18093/ > "$out/wrk.txt"
grep -E "requests in|Requests/sec|Non-2xx" "$out/wrk.txt"
db=$out/data/bridge.sqlite
q() { sqlite3 "$db" "$1"; }
while [ "$(q "select (select count(*) from route_queue) + (select count(*) from jobs where state in ('pending','running') or (state = 'held' and hold_reason = 'after'))")" != "0" ]; do
    sleep 0.5
done
q "select mapping, state, count(*) from jobs group by mapping, state"
acked=$(awk '/Requests\/sec/ {print $2}' "$out/wrk.txt")
read -r hires seconds < <(q "select count(*), (max(j.updated_at) - (select min(received_at) from inbox)) / 1000.0
                               from jobs j where j.mapping = 'jobylon-result-card' and j.state = 'done'" | tr '|' ' ')
python3 - "$acked" "$hires" "$seconds" <<'PY'
import sys
acked, hires, seconds = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
processed = hires / seconds
print(f"acked/s {acked:,.0f}; hires fully processed {hires:,} in {seconds:.1f} s = {processed:,.0f}/s; ratio {processed / acked:.3f}")
PY
