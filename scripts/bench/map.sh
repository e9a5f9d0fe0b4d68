#!/usr/bin/env bash
# `map --ndjson` with the bundled hired-nightly-csv mapping vs jq doing the
# same projection to CSV, on the same 100k generated candidate events.
#   scripts/bench/map.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}
out=scripts/bench/out
mkdir -p "$out"
python3 scripts/bench/make-candidates.py "$n" "$out/map-events.ndjson"
ls -l "$out/map-events.ndjson"
swift build -c release --product jobylon-bridge >/dev/null
echo "== jobylon-bridge map --ndjson (hired-nightly-csv: match, 10 columns incl. iban, phone, date filters)"
/usr/bin/time -f "map --ndjson %e s, %M KB max RSS" .build/release/jobylon-bridge map --mapping hired-nightly-csv --ndjson "$out/map-events.ndjson" > "$out/map-out.ndjson"
wc -l < "$out/map-out.ndjson"
echo "== jq -r, the same projection to CSV"
/usr/bin/time -f "jq -r %e s, %M KB max RSS" jq -r '
  select(.data.candidate.status.group == 20) | .data as $d | $d.candidate as $c |
  [$c.internal_id, ($c.first_name | gsub("^\\s+|\\s+$"; "")), ($c.last_name | gsub("^\\s+|\\s+$"; "")),
   ($c.email | ascii_downcase), ($c.phone_number | gsub("[ -]"; "")), ($c.data.iban | gsub(" "; "") | ascii_upcase),
   $c.data.startingdate, ($c.data.manager | join(", ")), $d.job.title, ($d.job.departments[0].name // "")] | @csv' \
  "$out/map-events.ndjson" > "$out/jq-out.csv"
wc -l < "$out/jq-out.csv"
