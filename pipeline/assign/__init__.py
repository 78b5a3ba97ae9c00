"""Assign studies to reviewers: single review, and a share of blind double reviews."""
