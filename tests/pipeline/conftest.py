"""Fixtures of the pipeline tests."""

from __future__ import annotations

import pytest

from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture
def fake():
    """A scriptable OpenAI-compatible server on 127.0.0.1, for the LLM extractor's tests."""
    with FakeOpenAIServer() as server:
        yield server
