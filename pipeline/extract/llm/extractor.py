"""LLM extractor (GPT-IE, after MedFILIP, arXiv 2501.10775) over any OpenAI-compatible API.

``pipeline.extract.run`` builds it with ``make_llm_extractor`` and streams results from
``extract_batch``; this module owns the calls, the response cache and the usage ledger
(``LLMCall`` rows), and writes nothing else. Pieces:

- ``pipeline.extract.llm.prompt``: the versioned prompt, the strict JSON schema, the answer checks
  (pydantic, verbatim evidence, instruction-like passages);
- ``pipeline.llm_client``: one call with retries (429 / 5xx / timeouts, backoff + jitter,
  Retry-After);
- here: bounded concurrency (an ``asyncio.Semaphore`` on a loop in a worker thread, results
  handed to the caller's thread through a queue as each report completes), the cache keyed by
  (prompt version + rendered-prompt hash, model, report hash), and the run summary.

The API key is read from settings when the client is built and is never stored or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from openai import AsyncOpenAI
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from db import queries
from db.engine import session_scope
from db.models import LLMCall
from pipeline.extract.findings import ExtractionResult
from pipeline.extract.llm.prompt import (
    PROMPT_VERSION,
    AnswerError,
    Prompt,
    load_prompt,
    parse_answer,
)
from pipeline.extract.llm.prompt import to_findings as check_findings
from pipeline.llm_client import (
    CallFailed,
    Completion,
    RetryPolicy,
    complete,
    make_client,
    resolve_api_key,
    structured_request,
)
from pipeline.settings import Settings

log = logging.getLogger(__name__)
CANCEL_POLL_S = 0.05  # how often the worker loop checks that the caller still wants results
FLUSH_EVERY_S = 0.5  # ledger rows are written in batches: one commit per flush, not per call


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


@dataclass
class RunSummary:
    """What one extractor run cost: the CLI prints ``format()``."""

    reports: int = 0  # results yielded
    calls: int = 0  # HTTP requests sent, retries included (0 on a fully cached rerun)
    retries: int = 0
    cache_hits: int = 0  # reports answered from the cache (or by a duplicate text in the batch)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # successful requests only
    errors: Counter = field(default_factory=Counter)  # kind -> reports that failed that way
    rejected_findings: int = 0
    wall_s: float = 0.0
    price_per_1k: tuple[float, float] | None = None  # (prompt, completion) in USD per 1k tokens

    @property
    def cost_usd(self) -> float | None:
        if self.price_per_1k is None:
            return None
        p, c = self.price_per_1k
        return (self.prompt_tokens * p + self.completion_tokens * c) / 1000.0

    def as_dict(self) -> dict:
        return {"reports": self.reports, "calls": self.calls, "retries": self.retries,
                "cache_hits": self.cache_hits, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd,
                "latency_p50_ms": _percentile(self.latencies_ms, 0.5),
                "latency_p95_ms": _percentile(self.latencies_ms, 0.95),
                "errors": dict(self.errors), "rejected_findings": self.rejected_findings,
                "wall_s": round(self.wall_s, 3)}

    def format(self) -> str:
        d = self.as_dict()
        lat = ("latency n/a" if d["latency_p50_ms"] is None else
               f"latency p50 {d['latency_p50_ms']:.0f} ms, p95 {d['latency_p95_ms']:.0f} ms")
        cost = "" if d["cost_usd"] is None else f", est. cost ${d['cost_usd']:.4f}"
        errors = ", ".join(f"{k}={v}" for k, v in sorted(self.errors.items())) or "none"
        return (f"llm: {self.reports} reports in {self.wall_s:.1f} s; {self.calls} calls "
                f"({self.retries} retries), {self.cache_hits} cache hits; tokens "
                f"{self.prompt_tokens} prompt + {self.completion_tokens} completion{cost}; "
                f"{lat}; {self.rejected_findings} findings rejected; errors: {errors}")


@dataclass
class _Report:
    """One distinct report text of a batch and the input ids that carry it."""

    ids: list[str]
    text: str
    sha: str
    key: str  # LLMCall.cache_key


class LLMExtractor:
    name = "llm"

    def __init__(self, *, prompt: Prompt, model: str, base_url: str | None,
                 api_key: SecretStr | None, db_url: str, concurrency: int, timeout_s: float,
                 policy: RetryPolicy, price_per_1k: tuple[float, float] | None = None) -> None:
        self.prompt = prompt
        self.prompt_version = prompt.version
        self.model = model
        self.version = f"{prompt.version}:{model}"
        self.extractor_id = f"llm/{prompt.version}/{model}"  # ExtractedFinding.extractor
        self.base_url = base_url
        self._api_key = api_key  # SecretStr: its repr is masked
        self.db_url = db_url
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.policy = policy
        self.stats = RunSummary(price_per_1k=price_per_1k)
        self._pending: list[LLMCall] = []  # ledger rows not yet written (worker loop only)

    def summary(self) -> RunSummary:
        return self.stats

    def cache_key(self, report_sha: str) -> str:
        """sha256 of (prompt version, rendered-prompt hash, model, report hash).

        The rendered prompt includes the vocabulary, so editing it invalidates the cache even
        when the prompt file's version is unchanged.
        """
        blob = json.dumps([self.prompt.version, self.prompt.fingerprint, self.model, report_sha])
        return hashlib.sha256(blob.encode()).hexdigest()

    # --- the sync face: a generator fed by a worker thread ------------------------------------

    def extract_batch(self, items: Sequence[tuple[str, str]]) -> Iterator[ExtractionResult]:
        """Yield one ExtractionResult per (id, text) as each completes (cache hits first)."""
        out: queue.Queue = queue.Queue()
        stop = threading.Event()
        done = object()

        def work() -> None:
            try:
                asyncio.run(self._run(list(items), out.put, stop))
            except BaseException as exc:  # handed to the caller's thread and raised there
                out.put(exc)
            out.put(done)

        t0 = time.perf_counter()
        worker = threading.Thread(target=work, name="llm-extract", daemon=True)
        worker.start()
        try:
            while (msg := out.get()) is not done:
                if isinstance(msg, BaseException):
                    raise msg
                self.stats.reports += 1
                yield msg
        finally:
            stop.set()  # the caller stopped early (or we are done): cancel what is in flight
            worker.join()
            self.stats.wall_s += time.perf_counter() - t0

    # --- the async core -----------------------------------------------------------------------

    def _group(self, items: list[tuple[str, str]]) -> list[_Report]:
        by_sha: dict[str, _Report] = {}
        for item_id, text in items:
            sha = sha256_text(text)
            if sha in by_sha:
                by_sha[sha].ids.append(item_id)
            else:
                by_sha[sha] = _Report([item_id], text, sha, self.cache_key(sha))
        return list(by_sha.values())

    async def _run(self, items: list[tuple[str, str]], emit: Callable[[ExtractionResult], None],
                   stop: threading.Event) -> None:
        reports = self._group(items)
        cached = await asyncio.to_thread(self._lookup, [r.key for r in reports])
        misses = []
        for r in reports:
            raw = self._cached_findings(cached.get(r.key))
            if raw is None:
                misses.append(r)
                continue
            self.stats.cache_hits += len(r.ids)
            for res in self._results(r, raw):
                emit(res)
        if not misses or stop.is_set():
            return
        sem = asyncio.Semaphore(self.concurrency)
        flusher = asyncio.create_task(self._flush_every(FLUSH_EVERY_S))
        async with make_client(base_url=self.base_url, api_key=self._api_key) as client:
            tasks = [asyncio.create_task(self._guarded(client, sem, r)) for r in misses]
            watcher = asyncio.create_task(self._cancel_on(stop, tasks))
            try:
                for fut in asyncio.as_completed(tasks):
                    for res in await fut:
                        emit(res)
            finally:
                for t in [watcher, flusher, *tasks]:
                    t.cancel()
                await self._flush()  # also when cancelled: answers paid for stay in the ledger

    @staticmethod
    async def _cancel_on(stop: threading.Event, tasks: list[asyncio.Task]) -> None:
        while not stop.is_set():
            await asyncio.sleep(CANCEL_POLL_S)
        for t in tasks:
            t.cancel()

    async def _guarded(self, client: AsyncOpenAI, sem: asyncio.Semaphore,
                       r: _Report) -> list[ExtractionResult]:
        """``_extract_one``, with any unexpected failure confined to its own report."""
        try:
            return await self._extract_one(client, sem, r)
        except Exception as exc:  # a bug or an SDK surprise must not sink the batch
            log.exception("llm extraction crashed on one report")
            return self._failed(r, "internal", f"unexpected error: {type(exc).__name__}: {exc}")

    async def _extract_one(self, client: AsyncOpenAI, sem: asyncio.Semaphore,
                           r: _Report) -> list[ExtractionResult]:
        request = structured_request(self.model, self.prompt.messages(r.text),
                                     self.prompt.response_format)
        async with sem:
            try:
                comp = await complete(client, request, timeout_s=self.timeout_s,
                                      policy=self.policy)
            except CallFailed as exc:
                self.stats.calls += exc.attempts
                self.stats.retries += exc.attempts - 1
                return self._failed(r, exc.kind, f"LLM call failed: {exc}")
        self._count(comp)
        try:
            raw = parse_answer(comp.content, finish_reason=comp.finish_reason,
                               refusal=comp.refusal)
        except AnswerError as exc:
            self._pending.append(self._ledger_row(r, comp, cacheable=False))
            return self._failed(r, exc.kind, str(exc))
        # Only answers of the right shape are cached: a rerun retries the others.
        self._pending.append(self._ledger_row(r, comp, cacheable=True))
        return self._results(r, raw)

    def _count(self, comp: Completion) -> None:
        self.stats.calls += comp.attempts
        self.stats.retries += comp.attempts - 1
        self.stats.prompt_tokens += comp.prompt_tokens
        self.stats.completion_tokens += comp.completion_tokens
        self.stats.latencies_ms.append(comp.latency_ms)

    def _failed(self, r: _Report, kind: str, message: str) -> list[ExtractionResult]:
        self.stats.errors[kind] += len(r.ids)
        log.warning("llm extraction failed for %d report(s) [%s]: %s", len(r.ids), kind, message)
        return [ExtractionResult(id=i, error=message) for i in r.ids]

    def _results(self, r: _Report, raw_findings: list) -> list[ExtractionResult]:
        findings, rejected = check_findings(raw_findings, r.text, vocab=self.prompt.vocab,
                                            extractor=self.extractor_id)
        self.stats.rejected_findings += len(rejected) * len(r.ids)
        if rejected and not findings:
            # Nothing usable came back: the report fails (and keeps its earlier findings), with
            # every reason in its one error.
            self.stats.errors["no_valid_finding"] += len(r.ids)
            error = f"all {len(rejected)} findings rejected: " + "; ".join(rejected)
            return [ExtractionResult(id=i, error=error, rejected=rejected) for i in r.ids]
        return [ExtractionResult(id=i, findings=findings, rejected=rejected) for i in r.ids]

    # --- the cache (blocking DB work, run in a thread) ----------------------------------------

    def _lookup(self, keys: list[str]) -> dict[str, LLMCall]:
        try:
            with session_scope(self.db_url) as session:
                return queries.get_llm_responses(keys, session=session)
        except SQLAlchemyError as exc:  # no cache is slower, not wrong
            self.stats.errors["cache_read"] += 1
            log.warning("llm cache lookup failed, calling the model: %s", type(exc).__name__)
            return {}

    @staticmethod
    def _cached_findings(row: LLMCall | None) -> list | None:
        if row is None:
            return None
        try:
            return parse_answer(row.response_json)
        except AnswerError:  # only well-formed answers are cached; a bad row is a miss
            return None

    def _ledger_row(self, r: _Report, comp: Completion, *, cacheable: bool) -> LLMCall:
        """Usage row of one answer; only ``cacheable`` rows carry the cache key itself."""
        key = r.key if cacheable else sha256_text(f"{r.key}:unusable:{uuid.uuid4()}")
        return LLMCall(cache_key=key, prompt_version=self.prompt_version, model_name=self.model,
                       report_sha256=r.sha, response_json=comp.content or "",
                       prompt_tokens=comp.prompt_tokens,
                       completion_tokens=comp.completion_tokens, latency_ms=comp.latency_ms)

    async def _flush_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._flush()

    async def _flush(self) -> None:
        rows, self._pending = self._pending, []
        if rows:
            await asyncio.to_thread(self._write, rows)

    def _write(self, rows: list[LLMCall]) -> None:
        try:
            with session_scope(self.db_url) as session:
                for row in rows:  # a key stored meanwhile (another run) is skipped, not an error
                    queries.add_llm_call(row, session=session)
        except SQLAlchemyError as exc:  # the results still go out; only the cache misses them
            self.stats.errors["cache_write"] += len(rows)
            log.warning("llm cache write failed: %s", type(exc).__name__)


def make_llm_extractor(*, settings: Settings, db_url: str | None = None,
                       concurrency: int | None = None, model: str | None = None,
                       base_url: str | None = None, prompt_version: str = PROMPT_VERSION,
                       policy: RetryPolicy | None = None,
                       price_per_1k: tuple[float, float] | None = None) -> LLMExtractor:
    """The LLM extractor; None arguments are taken from ``settings``.

    ``price_per_1k`` = (prompt, completion) USD per 1k tokens enables the cost estimate; without
    it, settings ``llm_price_prompt_per_1k`` / ``llm_price_completion_per_1k`` are used.
    """
    resolve_api_key(base_url=base_url or settings.openai_base_url,
                    api_key=settings.openai_api_key)  # fail now, not on the first call
    if price_per_1k is None:
        p, c = settings.llm_price_prompt_per_1k, settings.llm_price_completion_per_1k
        price_per_1k = (p, c) if p is not None and c is not None else None
    return LLMExtractor(
        prompt=load_prompt(prompt_version), model=model or settings.openai_model,
        base_url=base_url or settings.openai_base_url, api_key=settings.openai_api_key,
        db_url=db_url or settings.database_url,
        concurrency=concurrency or settings.llm_concurrency, timeout_s=settings.llm_timeout_s,
        policy=policy or RetryPolicy(max_retries=settings.llm_max_retries),
        price_per_1k=price_per_1k)
