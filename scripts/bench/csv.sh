#!/usr/bin/env bash
# Export of N staged rows (default 1,000,000) by `jobylon-bridge export --period`
# next to `sqlite3 -csv` dumping the same rows from the same store.
#   scripts/bench/csv.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
out=$PWD/scripts/bench/out/csv
rm -rf "$out" && mkdir -p "$out/exports" && mkdir -m 700 "$out/data"
swift build -c release --product jobylon-bridge >/dev/null
bin=.build/release/jobylon-bridge
$bin jobs --data-dir "$out/data" >/dev/null   # creates and migrates the store
python3 - "$out/data/bridge.sqlite" "$n" <<'PY'
import sqlite3, sys, json, hashlib, datetime, zoneinfo
db, n = sys.argv[1], int(sys.argv[2])
tz = zoneinfo.ZoneInfo("Europe/Stockholm")
start = int(datetime.datetime(2026, 1, 10, 2, 0, tzinfo=tz).timestamp())
end = int(datetime.datetime(2026, 1, 11, 2, 0, tzinfo=tz).timestamp())
con = sqlite3.connect(db)
con.execute("PRAGMA synchronous=OFF")
def rows():
    for i in range(n):
        row = {"Anställnings-ID": 5900000 + i, "Förnamn": "Åsa" if i % 3 else "Bruce", "Efternamn": "Öberg, \"jr\"" if i % 7 == 0 else "Wayne",
               "E-post": f"user{i}@example.com", "Telefon": "+4681234567", "IBAN": "SE6281323143611896423859", "Startdatum": "2026-02-01",
               "Chef": "Selina Kyle", "Befattning": "Engineer\nNight shift" if i % 11 == 0 else "Engineer", "Avdelning": "=cmd" if i % 13 == 0 else "Engineering"}
        b = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()
        yield ("hired-nightly-csv", start, end, f"c:{i:08d}", start * 1000, i, b, hashlib.sha256(b).digest(), "c", f"{i}")
con.executemany("INSERT INTO csv_rows(mapping, period_start, period_end, row_key, received_at, job_id, row, row_hash, company_id, subject_id) VALUES (?,?,?,?,?,?,?,?,?,?)", rows())
con.commit()
PY
ls -l "$out/data/bridge.sqlite"
echo "== jobylon-bridge export --period 2026-01-10 (RFC 4180, BOM, ';', formula guard, streaming)"
EXPORT_DIR="$out/exports" /usr/bin/time -f "export %e s, %M KB max RSS" $bin export --data-dir "$out/data" --mappings mappings --mapping hired-nightly-csv --period 2026-01-10
ls -l "$out/exports"
echo "== the same period again in ISO-8859-1 (Visma Lön's import encoding; transliterate, every change reported)"
mkdir -p "$out/mappings-latin1" "$out/exports-latin1"
python3 - mappings/hired-nightly-csv.json "$out/mappings-latin1/hired-nightly-csv.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["csv"].pop("bom", None)
m["csv"]["encoding"] = "iso-8859-1"
m.pop("$schema", None)
json.dump(m, open(sys.argv[2], "w"), ensure_ascii=False, indent=2)
PY
EXPORT_DIR="$out/exports-latin1" /usr/bin/time -f "export latin1 %e s, %M KB max RSS" $bin export --data-dir "$out/data" --mappings "$out/mappings-latin1" --mapping hired-nightly-csv --period 2026-01-10
ls -l "$out/exports-latin1"
echo "== sqlite3 -csv, the same columns from the same rows"
cols=$(python3 -c "print(','.join(\"json_extract(row,'$.\\\"%s\\\"')\" % c for c in ['Anställnings-ID','Förnamn','Efternamn','E-post','Telefon','IBAN','Startdatum','Chef','Befattning','Avdelning']))")
/usr/bin/time -f "sqlite3 -csv %e s, %M KB max RSS" sqlite3 -csv "$out/data/bridge.sqlite" "SELECT $cols FROM csv_rows WHERE mapping = 'hired-nightly-csv' ORDER BY row_key" > "$out/sqlite3.csv"
ls -l "$out/sqlite3.csv"
