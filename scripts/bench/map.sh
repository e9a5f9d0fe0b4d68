#!/usr/bin/env bash
# `map --ndjson` with the bundled hired-nightly-csv mapping vs jq doing the
# same projection to CSV and vs the same mapping written by hand in Python
# with orjson (scripts/bench/map-orjson.py), on the same generated candidate
# events; then hyperfine, 5 runs each, for the three (needs hyperfine, jq, orjson).
#   scripts/bench/map.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-50000}
out=scripts/bench/out
mkdir -p "$out"
python3 scripts/bench/make-candidates.py "$n" "$out/map-events.ndjson"
ls -l "$out/map-events.ndjson"
[ -n "${SKIP_BUILD:-}" ] || swift build -c release --product jobylon-bridge >/dev/null
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
echo "== orjson, the same mapping by hand"
/usr/bin/time -f "orjson %e s, %M KB max RSS" python3 scripts/bench/map-orjson.py "$out/map-events.ndjson" > "$out/orjson-out.ndjson"
wc -l < "$out/orjson-out.ndjson"
echo "== hyperfine, 5 runs each (the machine is a shared VM: compare within one run)"
hyperfine -w 1 -r 5 \
  "sh -c '.build/release/jobylon-bridge map --mapping hired-nightly-csv --ndjson $out/map-events.ndjson > /dev/null'" \
  "python3 scripts/bench/map-orjson.py $out/map-events.ndjson > /dev/null" \
  "sh -c 'jq -r \"select(.data.candidate.status.group == 20) | [.data.candidate.internal_id, .data.job.title] | @csv\" $out/map-events.ndjson > /dev/null'"
