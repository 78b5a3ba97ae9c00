"""Index stage: FAISS indexes of a run's image and label-text embeddings (``vectors``), built and
updated by ``python -m pipeline.index`` (``build``), checked for staleness (``status``), read
back for the app (``files``); the label-error ranking (``errors``) and the SSM views
(``ssmview``) work on a loaded index."""
