"""Encoders, SSM math and losses. Imports nothing else of this project."""
