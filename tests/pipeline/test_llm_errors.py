"""LLM extractor failure modes: each bad item gets a specific error, the batch goes on, and
nothing already stored is lost."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from pydantic import SecretStr
from sqlmodel import select

from db.engine import session_scope
from db.models import LLMCall
from pipeline.extract.llm import extractor as llm
from pipeline.llm_client import RetryPolicy
from tests.fakes import finding, llm_extractor
from tests.fakes.openai_server import answer, hang, invalid_json, status

GOOD_TEXT = "Small left pleural effusion."
GOOD = {"findings": [{"category": "pleural_effusion", "presence": "present", "severity": "mild",
                      "side": "left", "region": None, "evidence": GOOD_TEXT}]}


def run(fake, db_url, items, **kw):
    ex = llm_extractor(fake.base_url, db_url, **kw)
    return {r.id: r for r in ex.extract_batch(items)}, ex


def stored_calls(db_url) -> list[LLMCall]:
    with session_scope(db_url) as s:
        return list(s.exec(select(LLMCall).order_by(LLMCall.id)).all())


def test_invalid_json_is_an_error_on_that_item_and_is_not_cached(fake, db_url):
    fake.script("BROKEN", invalid_json())
    fake.script(GOOD_TEXT, answer(GOOD))
    res, ex = run(fake, db_url, [("bad", "BROKEN report."), ("ok", GOOD_TEXT)])

    assert res["bad"].error.startswith("invalid JSON from model")
    assert res["bad"].findings == []
    assert res["ok"].error is None and len(res["ok"].findings) == 1
    assert ex.summary().errors["invalid_json"] == 1
    # both answers are in the usage ledger; only the good one under its cache key
    rows = stored_calls(db_url)
    assert len(rows) == 2 and sum(r.prompt_tokens > 0 for r in rows) == 2
    bad_key = ex.cache_key(ex._group([("bad", "BROKEN report.")])[0].sha)
    assert bad_key not in {r.cache_key for r in rows}
    # a rerun asks again for the bad one only
    run(fake, db_url, [("bad", "BROKEN report."), ("ok", GOOD_TEXT)])
    assert fake.calls == 3


def test_wrong_top_level_shape_is_a_schema_error(fake, db_url):
    fake.script("X", answer([{"category": "edema"}]))
    fake.script("Y", answer({"findings": "none"}))
    res, ex = run(fake, db_url, [("x", "X report."), ("y", "Y report.")])
    assert res["x"].error.startswith("answer is not")
    assert res["y"].error.startswith("answer is not")
    assert ex.summary().errors["schema"] == 2


def test_a_quote_not_in_the_report_rejects_that_finding_with_a_reason(fake, db_url):
    report = "Small left pleural effusion. Mild cardiomegaly."
    fake.script("Mild cardio", answer({"findings": [
        finding("pleural_effusion", GOOD_TEXT),
        finding("cardiomegaly", "Moderate cardiomegaly."),  # not what the report says
    ]}))
    res, ex = run(fake, db_url, [("r", report)])

    assert res["r"].error is None
    assert [f.category for f in res["r"].findings] == ["pleural_effusion"]
    assert res["r"].rejected == [
        "evidence not in report for cardiomegaly: 'Moderate cardiomegaly.'"]
    assert ex.summary().rejected_findings == 1


def test_an_answer_whose_every_quote_is_invented_fails_the_item(fake, db_url):
    fake.script("clear", answer({"findings": [finding("pneumonia", "right lower lobe pneumonia"),
                                              finding("edema", "mild edema")]}))
    res, ex = run(fake, db_url, [("r", "The lungs are clear.")])
    assert res["r"].findings == []
    assert res["r"].error == ("all 2 findings rejected: evidence not in report for pneumonia: "
                              "'right lower lobe pneumonia'; evidence not in report for edema: "
                              "'mild edema'")
    assert ex.summary().errors == {"no_valid_finding": 1}


def test_unknown_category_region_or_value_rejects_only_that_finding(fake, db_url):
    report = "Small left pleural effusion. Dextrocardia. Left basilar atelectasis."
    fake.script("Dextro", answer({"findings": [
        finding("pleural_effusion", GOOD_TEXT),
        finding("dextrocardia", "Dextrocardia."),
        finding("atelectasis", "Left basilar atelectasis.", region="lowerish"),
        finding("atelectasis", "Left basilar atelectasis.", presence="maybe"),
    ]}))
    res, _ = run(fake, db_url, [("r", report)])
    assert len(res["r"].findings) == 1
    reasons = res["r"].rejected
    assert reasons[0] == "unknown category 'dextrocardia': 'Dextrocardia.'"
    assert reasons[1].startswith("unknown region 'lowerish' for atelectasis")
    assert reasons[2].startswith("invalid finding (presence:")


def test_429_waits_for_retry_after_then_succeeds(fake, db_url):
    fake.script(GOOD_TEXT, status(429, retry_after=0.3), answer(GOOD))
    policy = RetryPolicy(max_retries=2, base_s=0.001, cap_s=2.0)
    res, ex = run(fake, db_url, [("r", GOOD_TEXT)], policy=policy)

    assert res["r"].error is None and len(res["r"].findings) == 1
    assert fake.calls == 2 and fake.times[1] - fake.times[0] >= 0.3
    assert (ex.summary().calls, ex.summary().retries) == (2, 1)


def test_retry_after_is_capped(fake, db_url):
    fake.script(GOOD_TEXT, status(429, retry_after=3600), answer(GOOD))
    t0 = time.monotonic()
    res, _ = run(fake, db_url, [("r", GOOD_TEXT)])  # FAST_RETRIES caps waits at 0.05 s
    assert res["r"].error is None and time.monotonic() - t0 < 2.0


def test_429_every_time_fails_the_item_after_the_retries(fake, db_url):
    fake.script("LIMITED", status(429, retry_after=0))
    fake.script(GOOD_TEXT, answer(GOOD))
    res, ex = run(fake, db_url, [("r", "LIMITED report."), ("ok", GOOD_TEXT)])
    assert res["r"].error == "LLM call failed: rate limited: HTTP 429 (Retry-After 0 s) after 3 attempt(s)"
    assert res["ok"].error is None
    assert ex.summary().errors == {"rate_limited": 1}


def test_500_is_retried_then_succeeds(fake, db_url):
    fake.script(GOOD_TEXT, status(500), status(503), answer(GOOD))
    res, ex = run(fake, db_url, [("r", GOOD_TEXT)])
    assert res["r"].error is None and fake.calls == 3 and ex.summary().retries == 2


def test_500_every_time_fails_the_item(fake, db_url):
    fake.script("DOWN", status(500))
    res, ex = run(fake, db_url, [("r", "DOWN report.")])
    assert res["r"].error == "LLM call failed: server error: HTTP 500 after 3 attempt(s)"
    assert ex.summary().errors == {"server_error": 1} and fake.calls == 3


def test_4xx_other_than_429_is_not_retried(fake, db_url):
    fake.script("NOPE", status(400))
    res, _ = run(fake, db_url, [("r", "NOPE report.")])
    assert res["r"].error == "LLM call failed: request rejected: HTTP 400 after 1 attempt(s)"
    assert fake.calls == 1


def test_a_hanging_request_times_out_and_the_others_finish(fake, db_url):
    fake.script("HANG", hang(30))
    fake.script(GOOD_TEXT, answer(GOOD))
    policy = RetryPolicy(max_retries=1, base_s=0.001, cap_s=0.01)
    t0 = time.monotonic()
    res, ex = run(fake, db_url, [("h", "HANG report."), ("ok", GOOD_TEXT)], timeout_s=0.5,
                  policy=policy)
    assert res["h"].error == "LLM call failed: no answer within 0.5 s after 2 attempt(s)"
    assert res["ok"].error is None
    assert 1.0 <= time.monotonic() - t0 < 4.0
    assert ex.summary().errors == {"timeout": 1}


def test_a_mixed_batch_loses_nothing_already_stored(fake, db_url):
    good = [(f"g{i}", f"{GOOD_TEXT} Case {i}.") for i in range(4)]
    run(fake, db_url, good)
    before = [(r.id, r.cache_key, r.response_json) for r in stored_calls(db_url)]
    assert len(before) == 4

    fake.script("BROKEN", invalid_json())
    fake.script("LIMITED", status(429, retry_after=0))
    fake.script("DOWN", status(500))
    fake.script("HANG", hang(30))
    fake.script("INVENTED", answer({"findings": [finding("edema", "severe edema")]}))
    bad = [("j", "BROKEN."), ("l", "LIMITED."), ("d", "DOWN."), ("h", "HANG."),
           ("i", "INVENTED.")]
    calls_before = fake.calls
    res, ex = run(fake, db_url, bad + good + [("new", "No pneumothorax.")], timeout_s=0.5,
                  policy=RetryPolicy(max_retries=1, base_s=0.001, cap_s=0.01))

    assert len(res) == 10
    assert all(res[i].error for i, _ in bad)
    assert all(res[i].error is None and res[i].findings for i, _ in good)
    assert res["new"].error is None
    assert ex.summary().cache_hits == 4
    after = [(r.id, r.cache_key, r.response_json) for r in stored_calls(db_url)]
    assert after[:4] == before  # untouched
    # new rows: the invalid-JSON and invented-quote answers (ledger) and "new" (cache)
    assert len(after) == 4 + 3
    assert fake.calls - calls_before == 1 + 2 + 2 + 2 + 1 + 1


def test_an_unexpected_crash_fails_only_its_report(fake, db_url, monkeypatch):
    real = llm.check_findings

    def crash_on_boom(raw, text, **kw):
        if "BOOM" in text:
            raise RuntimeError("boom")
        return real(raw, text, **kw)

    monkeypatch.setattr(llm, "check_findings", crash_on_boom)
    res, ex = run(fake, db_url, [("x", "BOOM. No effusion."), ("ok", GOOD_TEXT)])
    assert res["x"].error == "unexpected error: RuntimeError: boom"
    assert res["ok"].error is None and ex.summary().errors == {"internal": 1}


def test_a_store_without_the_cache_table_still_extracts(fake, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"  # never migrated: no llmcall table
    res, ex = run(fake, url, [("ok", GOOD_TEXT)])
    assert res["ok"].error is None and len(res["ok"].findings) == 1
    assert ex.summary().errors == {"cache_read": 1, "cache_write": 1}


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("userinfo", ["", "proxyuser:proxy-pass-xyz@"])
def test_an_endpoint_that_is_down_is_named_but_the_key_is_not(db_url, caplog, userinfo):
    key = "sk-live-secret-key-0123456789"
    port = _closed_port()
    policy = RetryPolicy(max_retries=1, base_s=0.001, cap_s=0.01)
    ex = llm_extractor(f"http://{userinfo}127.0.0.1:{port}/v1", db_url, policy=policy,
                       openai_api_key=SecretStr(key))
    with caplog.at_level(logging.WARNING):
        [res] = ex.extract_batch([("r", GOOD_TEXT)])
    assert f"http://127.0.0.1:{port}/v1" in res.error and "after 2 attempt(s)" in res.error
    assert ex.summary().errors == {"connection": 1}
    for text in (res.error, caplog.text):
        assert key not in text and "proxy-pass-xyz" not in text
