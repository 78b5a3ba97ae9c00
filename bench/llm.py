"""LLM path throughput: concurrency 16 vs 1 against the fake OpenAI-compatible server, then a
rerun over the same reports, which must be answered from the cache with 0 calls.

    .venv/bin/python -m bench.llm
    .venv/bin/python -m bench.llm --reports 200 --latency 0.2 --low 1 --high 16

The fake server runs in a child process (as a real one would be remote), and each concurrency
level gets its own fresh SQLite store, so neither run sees the other's cache.
Exit status 0 when the speed-up is >= 10x and the rerun made 0 calls.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fake server lives in tests/

from db.engine import init_db  # noqa: E402
from pipeline.llm_client import RetryPolicy  # noqa: E402
from tests.fakes import llm_extractor  # noqa: E402
from tests.fakes.openai_server import FakeOpenAIProcess  # noqa: E402

SENTENCES = ["Small right pleural effusion.", "No pneumothorax.", "Mild cardiomegaly.",
             "Possible left basilar atelectasis.", "No focal consolidation.",
             "Mild interstitial edema.", "Stable 6 mm nodule in the right upper lobe."]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.llm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reports", type=int, default=96, help="distinct reports per run (default 96)")
    p.add_argument("--latency", type=float, default=0.2, help="fake server latency, s (0.2)")
    p.add_argument("--low", type=int, default=1, help="baseline concurrency (default 1)")
    p.add_argument("--high", type=int, default=16, help="concurrency to compare (default 16)")
    return p.parse_args(argv)


def make_reports(n: int) -> list[tuple[str, str]]:
    """n distinct reports (the case number defeats de-duplication of identical texts)."""
    return [(str(i), f"FINDINGS: {' '.join(SENTENCES[j % len(SENTENCES)] for j in range(i, i + 3))}"
                     f" Case {i}.") for i in range(n)]


def timed_run(fake: FakeOpenAIProcess, db_url: str, reports, concurrency: int):
    ex = llm_extractor(fake.base_url, db_url, concurrency=concurrency, timeout_s=30.0,
                       policy=RetryPolicy(max_retries=2, base_s=0.05, cap_s=1.0))
    calls0, t0 = fake.calls, time.perf_counter()
    results = list(ex.extract_batch(reports))
    wall = time.perf_counter() - t0
    errors = sum(r.error is not None for r in results)
    return len(results) / wall, fake.calls - calls0, errors, ex.summary()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reports = make_reports(args.reports)
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIProcess(latency_s=args.latency) as fake:
        rates = {}
        for conc in (args.low, args.high):
            url = f"sqlite:///{Path(tmp) / f'bench_c{conc}.db'}"
            init_db(url)
            rate, calls, errors, summary = timed_run(fake, url, reports, conc)
            rates[conc] = rate
            print(f"concurrency {conc:>3}: {rate:7.2f} reports/s  ({calls} calls, {errors} errors)")
            print(f"    {summary.format()}")
        ratio = rates[args.high] / rates[args.low]
        print(f"speed-up {args.high} vs {args.low}: {ratio:.1f}x")
        rate, calls, errors, summary = timed_run(fake, url, reports, args.high)  # same store
        print(f"rerun over the same {len(reports)} reports: {calls} calls made "
              f"({summary.cache_hits} cache hits, {errors} errors, {rate:.0f} reports/s)")
    return 0 if ratio >= 10 and calls == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
