#!/usr/bin/env bash
# REST deliveries/s to a fast local endpoint (nginx answering 201), each job's
# outcome committed: N webhooks are posted first, then the daemon delivers
# them; the rate is jobs done / (last done - first created).
#   scripts/bench/rest.sh [SECONDS_OF_POSTING]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/lib.sh
posting=${1:-5s}
out=$PWD/scripts/bench/out/rest
rm -rf "$out" && mkdir -p "$out/maps" "$out/nginx" && mkdir -m 700 "$out/data"
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --product jobylon-bridge >/dev/null
cat > "$out/maps/deliver.json" <<'JSON'
{"name": "deliver", "when": {"event": "candidate/new"},
 "rest": {"url": "http://127.0.0.1:18090/v1/employees", "honours_idempotency_key": true,
          "body": {"id": "{{ candidate.id }}", "iban": "{{ candidate.data.iban | iban }}", "start": "{{ candidate.data.startingdate | date: 'yyyy-MM-dd' }}"},
          "capture": {"employee_id": "{{ response.body.employeeId }}"}}}
JSON
answering_nginx "$out/nginx" 18090 201 '{"employeeId":"E-1"}'
trap 'stop_nginx "$out/nginx"; kill $daemon 2>/dev/null || true' EXIT
export TOKEN=bench-token-0123456789 BODY_FILE=scripts/bench/out/body.json
[ -f "$BODY_FILE" ] || python3 -c "import json; json.dump(json.load(open('Tests/JSONTests/Fixtures/candidate-new.json')), open('$BODY_FILE','w'), indent=2)"
JOBYLON_BRIDGE_TOKEN=$TOKEN .build/release/jobylon-bridge serve --listen 127.0.0.1:18091 --data-dir "$out/data" --mappings "$out/maps" --log-level error &
daemon=$!
for _ in $(seq 100); do [ -f "$out/data/listen-address" ] && break; sleep 0.1; done
wrk -t2 -c16 -d"$posting" -s scripts/bench/receiver.lua http://127.0.0.1:18091/ | grep -E "requests in|Requests/sec"
while [ "$(sqlite3 "$out/data/bridge.sqlite" "select count(*) from jobs where state not in ('done','dead')")" != "0" ]; do sleep 0.5; done
sqlite3 "$out/data/bridge.sqlite" "select state, count(*) from jobs group by state"
sqlite3 "$out/data/bridge.sqlite" "select count(*) as jobs, (max(updated_at) - min(created_at)) / 1000.0 as seconds, round(count(*) * 1000.0 / (max(updated_at) - min(created_at))) as per_second from jobs"
