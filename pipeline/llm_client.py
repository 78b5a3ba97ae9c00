"""Chat-completions transport of the LLM extractor: one call, with our own retries.

The openai client runs with ``max_retries=0``: this module owns the retry policy so that every
attempt is counted, Retry-After is honoured (capped), and a failure ends as one specific error
kind (``rate_limited``, ``server_error``, ``timeout``, ``connection``, ``http_error``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlparse

import openai
from pydantic import SecretStr

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
PLACEHOLDER_KEY = "not-needed"  # local OpenAI-compatible servers (vLLM, Ollama) ignore the key


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5  # retries after the first attempt (settings.llm_max_retries)
    base_s: float = 0.5  # first backoff, doubled per retry, then jittered
    cap_s: float = 30.0  # longest single wait, Retry-After included


@dataclass(frozen=True)
class Completion:
    """One successful answer, with what it cost."""

    content: str | None
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float  # of the successful attempt only
    attempts: int


class CallFailed(Exception):
    """The request failed for good: ``kind`` groups errors in the run summary."""

    def __init__(self, kind: str, message: str, attempts: int) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts


def json_schema_format(name: str, schema: dict) -> dict:
    """A strict JSON-schema ``response_format``: the server must answer in ``schema``."""
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def structured_request(model: str, messages: list[dict], response_format: dict) -> dict:
    """Chat-completion arguments for a deterministic structured answer.

    The format goes in ``extra_body``, verbatim: as the typed ``response_format`` argument the
    SDK walks the schema recursively on every call, the largest client CPU cost per request.
    """
    return {"model": model, "messages": messages, "temperature": 0,
            "extra_body": {"response_format": response_format}}


def resolve_api_key(*, base_url: str | None, api_key: SecretStr | None) -> str:
    """The key to send: the configured one, or a placeholder for a local server only."""
    key = api_key.get_secret_value() if api_key is not None else ""
    if key:
        return key
    if urlparse(base_url or "").hostname not in LOCAL_HOSTS:
        raise ValueError("OPENAI_API_KEY is not set (only a local OPENAI_BASE_URL may go "
                         "without one)")
    return PLACEHOLDER_KEY


def make_client(*, base_url: str | None, api_key: SecretStr | None) -> openai.AsyncOpenAI:
    """An AsyncOpenAI client that never retries by itself."""
    return openai.AsyncOpenAI(api_key=resolve_api_key(base_url=base_url, api_key=api_key),
                              base_url=base_url, max_retries=0)


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_delay(retry: int, policy: RetryPolicy, retry_after: float | None,
                  rng: random.Random | None = None) -> float:
    """Seconds before retry number ``retry`` (0-based): equal-jitter exponential backoff.

    The backoff is ``d/2 + U(0, d/2)`` with ``d = min(cap, base * 2**retry)``, so concurrent
    workers spread out but never retry immediately. A server's Retry-After is a floor; the cap
    bounds both so that one bad header cannot stall the batch.
    """
    rng = rng or random
    d = min(policy.cap_s, policy.base_s * (2 ** retry))
    delay = d / 2 + rng.uniform(0, d / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, policy.cap_s)


def endpoint_for_messages(base_url: object) -> str:
    """The endpoint as messages may show it: scheme, host, port and path only (no user, password
    or query string, which may carry credentials; the API key travels in a header, never here)."""
    u = urlparse(str(base_url))
    host = u.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return f"{u.scheme}://{host}{f':{u.port}' if u.port else ''}{u.path}".rstrip("/")


def _classify(exc: Exception, endpoint: str) -> tuple[str, str, float | None]:
    """(kind, message, retry_after) of a failed attempt; kinds in RETRYABLE are retried."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", "request timed out", None
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__  # httpx's error: "[Errno 111] Connection refused", a DNS failure...
        reason = f"{type(cause).__name__}: {cause}" if cause else type(exc).__name__
        return "connection", f"cannot connect to {endpoint} ({reason})", None
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        retry_after = parse_retry_after(exc.response.headers)
        if code == 429:
            hint = f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""
            return "rate_limited", f"rate limited: HTTP 429{hint}", retry_after
        if code >= 500:
            return "server_error", f"server error: HTTP {code}", retry_after
        return "http_error", f"request rejected: HTTP {code}", None
    return "bad_response", f"unusable response: {type(exc).__name__}", None


RETRYABLE = {"rate_limited", "server_error", "timeout", "connection"}


async def complete(client: openai.AsyncOpenAI, request: dict, *, timeout_s: float,
                   policy: RetryPolicy,
                   sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> Completion:
    """POST one chat completion, retrying 429 / 5xx / timeouts / connection errors."""
    for attempt in range(policy.max_retries + 1):
        t0 = time.perf_counter()
        try:
            resp = await client.chat.completions.create(**request, timeout=timeout_s)
        except openai.APIError as exc:
            kind, message, retry_after = _classify(exc, endpoint_for_messages(client.base_url))
            message = message.replace(client.api_key, "***") if client.api_key else message
            if kind == "timeout":
                message = f"no answer within {timeout_s:g} s"
            if kind not in RETRYABLE or attempt == policy.max_retries:
                raise CallFailed(kind, f"{message} after {attempt + 1} attempt(s)",
                                 attempt + 1) from None
            await sleep(backoff_delay(attempt, policy, retry_after))
            continue
        latency_ms = (time.perf_counter() - t0) * 1000.0
        choice = resp.choices[0] if resp.choices else None
        usage = resp.usage
        return Completion(
            content=choice.message.content if choice else None,
            finish_reason=choice.finish_reason if choice else None,
            refusal=getattr(choice.message, "refusal", None) if choice else None,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=latency_ms,
            attempts=attempt + 1,
        )
    raise AssertionError("unreachable")  # the loop always returns or raises
