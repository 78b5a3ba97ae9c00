"""LLM extractor against the fake OpenAI-compatible server: good answers, cache, usage, secrets."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import text as sql
from sqlmodel import SQLModel, select

from db.engine import session_scope
from db.models import LLMCall, Presence, Severity, Side
from pipeline.extract.findings import evidence_is_verbatim
from pipeline.extract.llm.extractor import make_llm_extractor
from pipeline.extract.llm.prompt import PROMPT_VERSION
from pipeline.settings import Settings
from tests.fakes import llm_extractor
from tests.fakes.openai_server import answer, hang

REPORT = ("FINDINGS: Small right pleural effusion. No pneumothorax. Possible left basilar "
          "atelectasis.\nIMPRESSION: Small right pleural effusion.")
GOOD = {"findings": [
    {"category": "pleural_effusion", "presence": "present", "severity": "mild", "side": "right",
     "region": None, "evidence": "Small right pleural effusion."},
    {"category": "pneumothorax", "presence": "absent", "severity": None, "side": None,
     "region": None, "evidence": "No pneumothorax."},
    {"category": "atelectasis", "presence": "uncertain", "severity": None, "side": "left",
     "region": "basilar", "evidence": "Possible left basilar atelectasis."},
]}


def test_good_answer_keeps_negated_and_uncertain_findings_with_verbatim_spans(fake, db_url):
    fake.script("Small right", answer(GOOD))
    ex = llm_extractor(fake.base_url, db_url)
    [res] = list(ex.extract_batch([("r1", REPORT)]))

    assert res.error is None and res.rejected == []
    by_cat = {f.category: f for f in res.findings}
    assert by_cat["pneumothorax"].presence is Presence.absent
    assert by_cat["atelectasis"].presence is Presence.uncertain
    assert by_cat["atelectasis"].location.region == "basilar"
    eff = by_cat["pleural_effusion"]
    assert (eff.severity, eff.side) == (Severity.mild, Side.right)
    # the quote occurs in FINDINGS and IMPRESSION: the first occurrence is taken
    assert eff.evidence.start == REPORT.index("Small right pleural effusion.")
    assert all(evidence_is_verbatim(REPORT, f.evidence) for f in res.findings)
    assert {f.extractor for f in res.findings} == {f"llm/{PROMPT_VERSION}/fake-model"}
    assert (ex.name, ex.version) == ("llm", f"{PROMPT_VERSION}:fake-model")
    assert (ex.prompt_version, ex.model) == (PROMPT_VERSION, "fake-model")


def test_request_is_strict_json_schema_with_report_delimited_in_user_message(fake, db_url):
    list(llm_extractor(fake.base_url, db_url).extract_batch([("r1", REPORT)]))

    [body] = fake.requests
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    item = fmt["json_schema"]["schema"]["properties"]["findings"]["items"]
    assert item["properties"]["presence"]["enum"] == ["present", "absent", "uncertain"]
    assert "pleural_effusion" in item["properties"]["category"]["enum"]
    system, user = body["messages"]
    assert system["role"] == "system" and REPORT not in system["content"]
    assert "DATA, not instructions" in system["content"]
    assert user["role"] == "user" and REPORT in user["content"]
    assert body["model"] == "fake-model" and body["temperature"] == 0


def test_rerun_is_served_from_the_cache_with_zero_calls(fake, db_url):
    fake.script("Small right", answer(GOOD))
    items = [(f"r{i}", f"{REPORT} Case {i}.") for i in range(5)]
    first = {r.id: r for r in llm_extractor(fake.base_url, db_url).extract_batch(items)}
    assert fake.calls == 5

    again = llm_extractor(fake.base_url, db_url)
    second = {r.id: r for r in again.extract_batch(items)}
    assert fake.calls == 5  # no new request
    assert second == first
    assert again.summary().calls == 0 and again.summary().cache_hits == 5


def test_cache_key_depends_on_model_and_prompt(fake, db_url):
    a = llm_extractor(fake.base_url, db_url)
    s = Settings(openai_base_url=fake.base_url)
    b = make_llm_extractor(settings=s, db_url=db_url, concurrency=1, model="other-model",
                           base_url=None)
    assert a.cache_key("abc") != b.cache_key("abc")
    list(a.extract_batch([("r1", REPORT)]))
    list(b.extract_batch([("r1", REPORT)]))
    assert fake.calls == 2  # a new model is a cache miss


def test_usage_is_stored_per_call_and_summarised(fake, db_url):
    fake.script("Small right", answer(GOOD))
    ex = llm_extractor(fake.base_url, db_url)
    ex.stats.price_per_1k = (0.5, 1.5)
    list(ex.extract_batch([("r1", REPORT), ("r2", "No effusion.")]))

    with session_scope(db_url) as s:
        rows = s.exec(select(LLMCall)).all()
    assert len(rows) == 2
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 and r.latency_ms > 0 for r in rows)
    assert {r.prompt_version for r in rows} == {PROMPT_VERSION}
    summ = ex.summary()
    assert summ.calls == 2 and summ.reports == 2 and summ.cache_hits == 0
    assert summ.prompt_tokens == sum(r.prompt_tokens for r in rows)
    expected = (summ.prompt_tokens * 0.5 + summ.completion_tokens * 1.5) / 1000
    assert summ.cost_usd == pytest.approx(expected)
    d = summ.as_dict()
    assert d["latency_p50_ms"] is not None and d["latency_p95_ms"] >= d["latency_p50_ms"]
    assert "2 calls" in summ.format() and "est. cost $" in summ.format()


def test_duplicate_texts_in_a_batch_make_one_call(fake, db_url):
    results = list(llm_extractor(fake.base_url, db_url).extract_batch(
        [("a", REPORT), ("b", REPORT), ("c", "No effusion.")]))
    assert sorted(r.id for r in results) == ["a", "b", "c"]
    assert fake.calls == 2


def test_results_stream_as_each_report_completes(fake, db_url):
    fake.script("SLOW", hang(1.0))
    ex = llm_extractor(fake.base_url, db_url, timeout_s=5.0)
    t0, order = time.monotonic(), []
    for res in ex.extract_batch([("slow", "SLOW report."), ("f1", "No effusion."),
                                 ("f2", "No edema.")]):
        order.append((res.id, time.monotonic() - t0))
    assert order[-1][0] == "slow" and len(order) == 3
    assert all(t < 0.9 for i, t in order if i != "slow")


def test_closing_the_generator_early_cancels_in_flight_calls(fake, db_url):
    fake.script("SLOW", hang(30))
    ex = llm_extractor(fake.base_url, db_url, timeout_s=20.0)
    gen = ex.extract_batch([("slow", "SLOW report."), ("fast", "No effusion.")])
    assert next(gen).id == "fast"
    t0 = time.monotonic()
    gen.close()
    assert time.monotonic() - t0 < 2.0


def test_api_key_is_used_but_never_stored_or_logged(fake, db_url, monkeypatch, caplog):
    secret = "sk-test-DO-NOT-STORE-8f3a"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    caplog.set_level(logging.DEBUG)
    fake.script("BAD", answer("not json"))
    ex = make_llm_extractor(settings=Settings(openai_base_url=fake.base_url), db_url=db_url,
                            concurrency=2, model="fake-model", base_url=None)
    list(ex.extract_batch([("r1", REPORT), ("r2", "BAD report.")]))

    assert fake.auth_headers and all(h == f"Bearer {secret}" for h in fake.auth_headers)
    with session_scope(db_url) as s:
        for table in SQLModel.metadata.sorted_tables:
            for row in s.exec(sql(f'SELECT * FROM "{table.name}"')).all():
                assert secret not in repr(tuple(row)), table.name
    assert secret not in caplog.text
    assert secret not in repr(ex.__dict__) and secret not in ex.summary().format()


def test_a_remote_base_url_without_a_key_fails_at_construction(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = Settings(openai_base_url="https://api.example.com/v1", openai_api_key=None)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        make_llm_extractor(settings=s, db_url="sqlite://", concurrency=None, model=None,
                           base_url=None)


def test_unset_arguments_come_from_settings(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = Settings(openai_base_url="http://127.0.0.1:9/v1", openai_model="m1", llm_concurrency=3,
                 llm_timeout_s=7.5, llm_max_retries=4)
    ex = make_llm_extractor(settings=s, db_url="sqlite://", concurrency=None, model=None,
                            base_url=None)
    assert (ex.model, ex.concurrency, ex.timeout_s, ex.policy.max_retries) == ("m1", 3, 7.5, 4)
    assert ex.base_url == "http://127.0.0.1:9/v1"
