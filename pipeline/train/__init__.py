"""Training stage: ``python -m pipeline.train`` (see cli.py), and the inference API other stages
use on a finished run (``pipeline.train.inference``: load_run, embed_studies, embed_texts)."""
