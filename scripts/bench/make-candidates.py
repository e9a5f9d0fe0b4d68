#!/usr/bin/env python3
"""Writes N unique candidate/new events (NDJSON) shaped like Jobylon's example.

usage: make-candidates.py N OUT.ndjson [--pad BYTES]
Each event differs in ids, names, IBAN and signed-URL expiry, so no cache or
dedupe can shortcut a benchmark. --pad grows the job description to reach a
target body size (the receiver benchmark uses ~3.7 KB).
"""
import json, random, sys, uuid

def main():
    n = int(sys.argv[1]); out = sys.argv[2]
    pad = int(sys.argv[sys.argv.index("--pad") + 1]) if "--pad" in sys.argv else 0
    rnd = random.Random(42)
    firsts = ["Bruce", "Åsa", "Selina", "Jörg", "Zoë", "Nils", "Ingrid", "Mikael"]
    lasts = ["Wayne", "Öberg", "Kyle", "Lindqvist", "Nyström", "Dahl"]
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            cid = str(uuid.UUID(int=rnd.getrandbits(128)))
            first, last = rnd.choice(firsts), rnd.choice(lasts)
            event = {
                "event_type": "candidate", "action": "new",
                "data": {
                    "company": {"id": "04b9171e-6d74-451f-a8e3-9bc3cf2b2954", "internal_id": 23, "settings": {"token": "JB-K123"}},
                    "candidate": {
                        "id": cid, "internal_id": 5903582 + i, "first_name": first, "last_name": last,
                        "email": f"{first.lower()}.{i}@example.com", "phone_number": f"+46 8 {rnd.randint(100000, 999999)}",
                        "message": "Please, don't call me before 5pm",
                        "status": {"id": 5, "name": "Hired", "group": 20 if i % 4 else 1},
                        "files": {"cv": f"https://jobylon.com/bucket/applications/{i}/cv.pdf?AWSAccessKeyId=AK&Signature=b8fAz%2F0hI4Z%3D&Expires={1708531474 + i}",
                                  "cover_letter": None, "other_1": None, "other_2": None, "other_3": None, "other_4": None, "other_5": None},
                        "data": {"iban": "SE6281323143611896423859", "startingdate": "2025-01-01", "manager": ["Selina Kyle"]},
                        "answers": [{"id": 1, "question_id": 1, "answer_type": "text_short", "text": "Answer \"quoted\" \\ with escapes\n"}],
                        "request_author": {"email": "alfred.pennyworth@wayne.com", "first_name": "Alfred", "last_name": "Pennyworth"},
                    },
                    "job": {
                        "id": "edc3d60e-53d3-4f54-8062-44e4139a52e9", "internal_id": 4356, "title": "Superhero",
                        "from_date": "2022-09-26", "to_date": "2023-10-31",
                        "description": "We are seeking an exceptional individual to join our team as a Superhero. " + ("x" * pad),
                        "skills": "Fast driver\nStealth and infiltration\nMaster of disguise",
                        "locations": [{"location": "Gotham, USA", "location_json": {"city": "Gotham", "city_short": "GT", "country": "United States of America", "country_short": "US", "area_1": "Gotham County", "area_1_short": "Gotham County"}}],
                        "requisition": {"internal_id": 123, "external_id": "JB-K123", "identifier": "JB-K123", "title": "Superhero"},
                        "experience": "Minimum of 5 years", "language": "en", "ad_url": "https://jobylon.com/jobs/3-super-hero/",
                        "layers": [{"id": 28, "name": "City", "layer_name": "Stockholm"}, {"id": 192, "name": "Team", "layer_name": "Software"}],
                        "categories": [{"id": 430, "text": "Office 1"}, {"id": 432, "text": "Full time"}],
                        "departments": [{"id": 91 + i % 5, "name": ["Engineering", "Sales", "HR", "Finance", "Support"][i % 5]}],
                        "settings": {"notes": "", "deadline": "2023-12-31", "requester": "Peter Parker", "notifybysms": "yes"},
                    },
                },
            }
            f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")

if __name__ == "__main__":
    main()
