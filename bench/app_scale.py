"""App pages at scale: each page timed through Streamlit's AppTest at 1k and at 100k studies.

    .venv/bin/python bench/app_scale.py                       # 1,000 vs 100,000 studies
    .venv/bin/python bench/app_scale.py --small 500 --large 20000 --repeats 2

Each store is a fresh SQLite file filled in bulk (not timed): N studies with one image and one
report each, 5 proposals per report (500k findings at 100k), and a reviewed slice of
``--reviewed`` studies (the same count at both sizes: a team reviews what it reviews, the corpus
grows), of which 20% are blind double reviews, one in four of those disputed. A page's time is
the best of ``--repeats`` warm AppTest runs (the first run, which imports and migrates, is not
timed). Target (issue 9): every page's large/small ratio <= 1.5. The last line reads
``worst_page_ratio=<x>``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from db.engine import get_engine, init_db, session_scope  # noqa: E402
from db.models import (  # noqa: E402
    Assignment,
    Finding,
    Image,
    Report,
    ReviewAnswer,
    ReviewerRole,
    Settlement,
    Study,
)

CATEGORIES = ("pleural_effusion", "cardiomegaly", "edema", "atelectasis", "pneumothorax")
TEXT = ("FINDINGS: Small left pleural effusion. Mild cardiomegaly. No edema. Possible "
        "atelectasis. No pneumothorax.\nIMPRESSION: Effusion.")
QUOTES = ("Small left pleural effusion.", "Mild cardiomegaly.", "No edema.",
          "Possible atelectasis.", "No pneumothorax.")
PRESENCE = ("present", "present", "absent", "uncertain", "absent")
CHUNK = 20_000


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _bulk(conn, model, rows) -> None:
    for i in range(0, len(rows), CHUNK):
        conn.execute(insert(model), rows[i:i + CHUNK])


def fill(url: str, n: int, reviewed: int) -> dict:
    """N studies; the first ``reviewed`` are assigned and answered (see module docstring)."""
    init_db(url)
    now = datetime.now(UTC)
    with session_scope(url) as s:
        from db import queries

        people = [queries.create_account(name, role, password="benchmark-pw", actor=queries.OPERATOR,
                                         session=s)
                  for name, role in (("A", ReviewerRole.reviewer), ("B", ReviewerRole.reviewer),
                                     ("J", ReviewerRole.adjudicator),
                                     ("Admin", ReviewerRole.admin))]
        ids = {r.name: r.id for r in people}
    engine = get_engine(url)
    with engine.begin() as conn:
        _bulk(conn, Study, [{"id": i, "study_key": _sha(f"s{i}"), "patient_key": _sha(f"p{i}"),
                             "dataset": "bench", "split": ("train", "val", "test")[i % 3],
                             "created_at": now} for i in range(1, n + 1)])
        _bulk(conn, Image, [{"id": i, "study_id": i, "image_key": _sha(f"i{i}"),
                             "path": f"images/{i}.png", "display_path": None, "thumb_path": None,
                             "view": "PA", "width": 64, "height": 64, "bits_stored": 8,
                             "source_format": "png", "pixel_sha256": _sha(f"x{i}")}
                            for i in range(1, n + 1)])
        _bulk(conn, Report, [{"id": i, "study_id": i, "text": TEXT, "text_sha256": _sha(TEXT)}
                             for i in range(1, n + 1)])
        _bulk(conn, Finding, [{
            "id": (i - 1) * 5 + j + 1, "report_id": i, "category": CATEGORIES[j],
            "presence": PRESENCE[j], "evidence_start": TEXT.index(QUOTES[j]),
            "evidence_end": TEXT.index(QUOTES[j]) + len(QUOTES[j]), "evidence_text": QUOTES[j],
            "extractor": "rules", "extractor_version": "bench", "status": "proposed",
            "version": 1, "created_at": now, "updated_at": now}
            for i in range(1, n + 1) for j in range(5)])
        assignments, answers, settlements = [], [], []
        for i in range(1, reviewed + 1):
            double = i % 5 == 0
            who = (ids["A"], ids["B"]) if double else ((ids["A"], ids["B"])[i % 2],)
            for rid in who:
                assignments.append({"reviewer_id": rid, "report_id": i, "created_at": now,
                                    "completed_at": now})
                for j in range(5):
                    rejected = double and rid == ids["B"] and j == 1 and i % 20 == 0
                    answers.append({
                        "report_id": i, "finding_id": (i - 1) * 5 + j + 1, "reviewer_id": rid,
                        "status": "rejected" if rejected else "accepted",
                        "category": CATEGORIES[j], "presence": PRESENCE[j],
                        "evidence_start": TEXT.index(QUOTES[j]),
                        "evidence_end": TEXT.index(QUOTES[j]) + len(QUOTES[j]),
                        "evidence_text": QUOTES[j], "version": 1, "created_at": now,
                        "updated_at": now})
            disputed = double and i % 20 == 0
            settlements.append({"report_id": i, "state": "disputed" if disputed else "settled",
                                "how": None if disputed else ("agreed" if double else "single"),
                                "answer_reviewer_id": None if disputed else who[0],
                                "version": 1, "updated_at": now})
        _bulk(conn, Assignment, assignments)
        _bulk(conn, ReviewAnswer, answers)
        _bulk(conn, Settlement, settlements)
        # the rest of A's queue: assigned, not started
        _bulk(conn, Assignment, [{"reviewer_id": ids["A"], "report_id": i, "created_at": now}
                                 for i in range(reviewed + 1, min(n, reviewed + 500) + 1)])
        conn.exec_driver_sql("ANALYZE")
    return ids


PAGES = [  # (label, page file, query params, who)
    ("review-queue", "review", {}, "A"),
    ("review-report", "review", {"report": str(3)}, "A"),
    ("studies", "studies", {}, "A"),
    ("study", "studies", {"study": "7"}, "A"),
    ("adjudicate", "adjudicate", {}, "J"),
    ("dashboard", "dashboard", {}, "A"),
    ("agreement", "agreement", {}, "A"),
    ("export", "export", {}, "A"),
    ("data", "data", {}, "A"),
    ("knowledge", "knowledge", {}, "A"),
    ("admin", "admin", {}, "Admin"),
]


def time_pages(url: str, ids: dict, repeats: int) -> dict[str, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from curation_app import state

    os.environ["DATABASE_URL"] = url
    st.cache_resource.clear()
    st.cache_data.clear()
    out = {}
    for label, name, params, who in PAGES:
        best = float("inf")
        for attempt in range(repeats + 1):
            at = AppTest.from_file(str(ROOT / "curation_app" / "pages" / f"{name}.py"),
                                   default_timeout=600)
            at.session_state[state.KEY_REVIEWER] = ids[who]
            for k, v in params.items():
                at.query_params[k] = v
            t0 = time.perf_counter()
            at.run()
            elapsed = time.perf_counter() - t0
            if at.exception:
                raise SystemExit(f"{label}: {at.exception}")
            if attempt:  # the first run warms imports and caches
                best = min(best, elapsed)
        out[label] = best
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=1_000, help="studies in the small store")
    ap.add_argument("--large", type=int, default=100_000, help="studies in the large store")
    ap.add_argument("--reviewed", type=int, default=1_000,
                    help="studies reviewed in each store (the same count at both sizes)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per page (best kept)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="app-scale-"))
    os.environ["MEDFILIP_DATA_DIR"] = str(tmp / "data")
    times = {}
    for n in (args.small, args.large):
        url = f"sqlite:///{tmp / f'store-{n}.db'}"
        t0 = time.perf_counter()
        ids = fill(url, n, min(args.reviewed, n))
        print(f"filled {n:,} studies in {time.perf_counter() - t0:.1f}s", flush=True)
        times[n] = time_pages(url, ids, args.repeats)
    ratios = {}
    for label, *_ in PAGES:
        small, large = times[args.small][label], times[args.large][label]
        ratios[label] = large / small
        print(f"{label:14s} {small * 1000:8.0f} ms {large * 1000:8.0f} ms  ratio {ratios[label]:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)
    worst = max(ratios, key=ratios.get)
    print(f"worst_page={worst} worst_page_ratio={ratios[worst]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
