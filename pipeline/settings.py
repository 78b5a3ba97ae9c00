"""Environment settings, read once at entry points and passed down.

Every field can be set from the environment (``DATABASE_URL``, ``OPENAI_BASE_URL``,
``OPENAI_API_KEY``, ``MEDFILIP_DATA_DIR``...) or a ``.env`` file. The API key is a ``SecretStr``:
it is never stored, printed or logged.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr

from db.settings import StoreSettings


class Settings(StoreSettings):
    # database_url (DATABASE_URL) and the .env file come from db.settings.StoreSettings, so the
    # stages and ``python -m db`` cannot disagree about which store they mean.
    # Where de-identified pixel files, thumbnails, runs and indexes are written.
    data_dir: Path = Field(Path("data"), validation_alias=AliasChoices("MEDFILIP_DATA_DIR"))
    # Salt of the patient/study pseudonyms. Change it per deployment; keep it out of the repo.
    pseudonym_salt: SecretStr = Field(SecretStr("medfilip-demo-salt"),
                                      validation_alias=AliasChoices("MEDFILIP_SALT"))
    # OpenAI-compatible endpoint for the LLM extractor (a hosted API, vLLM, Ollama...).
    openai_base_url: str | None = Field(None, validation_alias=AliasChoices("OPENAI_BASE_URL"))
    openai_model: str = Field("gpt-4o-mini", validation_alias=AliasChoices("OPENAI_MODEL"))
    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    # Requests in flight at once against the LLM endpoint.
    llm_concurrency: int = Field(8, ge=1, le=256, validation_alias=AliasChoices("MEDFILIP_LLM_CONCURRENCY"))
    # Seconds before one LLM request is abandoned and retried.
    llm_timeout_s: float = Field(60.0, gt=0, validation_alias=AliasChoices("MEDFILIP_LLM_TIMEOUT"))
    # Attempts per report on 429 / 5xx / timeout before the report is recorded as failed.
    llm_max_retries: int = Field(5, ge=0, validation_alias=AliasChoices("MEDFILIP_LLM_MAX_RETRIES"))
    # Prices in USD per 1,000 tokens, for the cost line of the LLM run summary (None: no cost shown).
    llm_price_prompt_per_1k: float | None = Field(
        None, ge=0, validation_alias=AliasChoices("MEDFILIP_LLM_PRICE_PROMPT_PER_1K"))
    llm_price_completion_per_1k: float | None = Field(
        None, ge=0, validation_alias=AliasChoices("MEDFILIP_LLM_PRICE_COMPLETION_PER_1K"))


def get_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit values (CLI flags) taking precedence."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
