"""The store's environment settings: the one place that reads ``DATABASE_URL``.

``pipeline.settings.Settings`` extends ``StoreSettings``, so the stages, the app and
``python -m db`` resolve the URL the same way: an explicit value (a ``--db`` flag), else the
environment, else a ``.env`` file in the working directory, else the embedded SQLite file.
``db.engine`` never reads the environment: callers pass URLs.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_URL = "sqlite:///data/medfilip.db"


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True,
                                      populate_by_name=True)

    # SQLAlchemy URL of the store; SQLite by default, postgresql+psycopg://... for many reviewers.
    database_url: str = Field(DEFAULT_URL, validation_alias=AliasChoices("DATABASE_URL"))


def store_url(url: str | None = None) -> str:
    """``url`` when given, else the settings' URL (environment, ``.env``, default)."""
    return url or StoreSettings().database_url
