"""The curation store: SQLModel tables, engine/session, and every query."""
