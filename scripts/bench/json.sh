#!/usr/bin/env bash
# JSON core vs jq on the same NDJSON file (figures go to docs/BENCHMARKS.md).
#   scripts/bench/json.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50000}
out=scripts/bench/out
mkdir -p "$out"
python3 scripts/bench/make-candidates.py "$n" "$out/candidates.ndjson" --pad 1200
ls -l "$out/candidates.ndjson"
swift build -c release --product json-bench >/dev/null
echo "== jobylon-bridge JSON core"
.build/release/json-bench "$out/candidates.ndjson"
echo "== jq -c . (parse + compact write)"
/usr/bin/time -f "jq -c .                      %e s" jq -c . "$out/candidates.ndjson" >/dev/null
echo "== jq -c '{t:.event_type,a:.action,c:.data.candidate.id}' (extract fields)"
/usr/bin/time -f "jq extract                   %e s" jq -c '{t:.event_type,a:.action,c:.data.candidate.id}' "$out/candidates.ndjson" >/dev/null
