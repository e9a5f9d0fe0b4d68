#!/usr/bin/env python3
"""The bundled hired-nightly-csv mapping by hand, with orjson: the peer of
`jobylon-bridge map --ndjson` in scripts/bench/map.sh. Same selection, same
columns and filters (trim, lower, phone with default country 46, IBAN with
mod-97, date, join, default), one compact JSON result per event line.

usage: map-orjson.py EVENTS.ndjson > OUT.ndjson
"""
import re, sys, datetime, orjson

def iban(text):
    compact = re.sub(r"[\s-]", "", text.upper())
    if not (15 <= len(compact) <= 34 and compact.isascii() and compact.isalnum() and compact[:2].isalpha() and compact[2:4].isdigit()):
        raise ValueError("invalid IBAN")
    if int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 != 1:
        raise ValueError("invalid IBAN: checksum does not match")
    return compact

def phone(text, country="46"):
    s = re.sub(r"[ \-().\u00a0/]", "", text)
    s = "+" + s[2:] if s.startswith("00") else s if s.startswith("+") else "+" + country + (s[1:] if s.startswith("0") else s)
    if not (s[1:].isascii() and s[1:].isdigit() and 7 <= len(s) - 1 <= 15):
        raise ValueError("not a phone number")
    return s

def row(d):
    c, j = d["candidate"], d["job"]
    deps = j.get("departments") or []
    return {
        "Anställnings-ID": str(c["internal_id"]), "Förnamn": c["first_name"].strip(), "Efternamn": c["last_name"].strip(),
        "E-post": c["email"].strip().lower(), "Telefon": phone(c["phone_number"]), "IBAN": iban(c["data"]["iban"]),
        "Startdatum": datetime.date.fromisoformat(c["data"]["startingdate"]).strftime("%Y-%m-%d"),
        "Chef": ", ".join(c["data"]["manager"]), "Befattning": j["title"], "Avdelning": (deps[0].get("name") if deps else None) or "",
    }

out = sys.stdout.buffer
for line in open(sys.argv[1], "rb"):
    e = orjson.loads(line)
    d = e["data"]
    result = {"mapping": "hired-nightly-csv", "event": f'{e["event_type"]}/{e["action"]}'}
    if d["candidate"]["status"]["group"] != 20:
        result.update({"result": "no match", "reason": "condition is false"})
    else:
        try:
            key = f'{d["company"]["id"]}:{d["candidate"]["id"]}'
            result.update({"result": "planned", "kind": "csv", "jobs": [{"effect_key": key, "payload": {"row_key": key, "row": row(d)}}]})
        except (KeyError, ValueError, TypeError) as error:
            result.update({"result": "error", "error": str(error)})
    out.write(orjson.dumps(result) + b"\n")
