"""One reviewer as a process of its own, for tests/db/test_review_concurrency.py. It imports only
``db`` and the standard library: the fork server that starts the reviewers imports it once."""

from __future__ import annotations

import faulthandler
import random
import time
import traceback

from sqlmodel import Session

from db import queries
from db.engine import get_engine, session_scope
from db.models import Finding, Reviewer

HANG_S = 120  # a reviewer still running after this prints its stack and exits (a failure)


def review(url: str, reviewer_id: int, finding_ids: list[int], writes: int, start, out) -> None:
    """Make ``writes`` successful decisions; puts (reviewer_id, writes, conflicts, error)."""
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    try:
        out.put((reviewer_id, *_review_loop(url, reviewer_id, finding_ids, writes, start), None))
    except BaseException:  # the parent reports it rather than waiting on a silent queue
        out.put((reviewer_id, 0, 0, traceback.format_exc()))


def _review_loop(url: str, reviewer_id: int, finding_ids: list[int], goal: int,
                 start) -> tuple[int, int]:
    """Read a finding (the page), pause (the reader), decide at the version seen; a conflict
    means reading it again and retrying."""
    rng = random.Random(reviewer_id)
    writes = conflicts = 0
    with Session(get_engine(url)) as s:
        reviewer = s.get(Reviewer, reviewer_id)
    start.wait(timeout=HANG_S / 2)
    while writes < goal:
        finding_id = rng.choice(finding_ids)
        with Session(get_engine(url)) as s:
            seen = s.get(Finding, finding_id).version
        time.sleep(rng.uniform(0, 0.004))
        with session_scope(url) as s:
            result = queries.decide_finding(finding_id, rng.choice(["accept", "reject"]),
                                            version=seen, reviewer=reviewer, session=s)
        if not result.ok and "was changed by" not in result.message:
            raise AssertionError(result.message)
        writes += result.ok
        conflicts += not result.ok
    return writes, conflicts
