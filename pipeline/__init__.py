"""Pipeline stages, one module each, each runnable as ``python -m pipeline.<stage>``."""
