"""Test doubles: a scriptable OpenAI-compatible server (``openai_server``) and its wiring."""

from __future__ import annotations

from pipeline.extract.llm.extractor import LLMExtractor, make_llm_extractor
from pipeline.llm_client import RetryPolicy
from pipeline.settings import Settings

# Retries in tests: real code paths, millisecond waits.
FAST_RETRIES = RetryPolicy(max_retries=2, base_s=0.001, cap_s=0.05)


def llm_extractor(base_url: str, db_url: str, *, concurrency: int = 4, timeout_s: float = 5.0,
                  policy: RetryPolicy = FAST_RETRIES, **settings) -> LLMExtractor:
    """An LLM extractor pointed at a fake server, with fast retries."""
    s = Settings(openai_base_url=base_url, llm_timeout_s=timeout_s, **settings)
    return make_llm_extractor(settings=s, db_url=db_url, concurrency=concurrency, model="fake-model",
                              base_url=None, policy=policy)


def finding(category: str, evidence: str, presence: str = "present", **kw) -> dict:
    """One finding as the model answers it (the JSON-schema shape of the prompt)."""
    return {"category": category, "presence": presence, "severity": None, "side": None,
            "region": None, "evidence": evidence, **kw}
