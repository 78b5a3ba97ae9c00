"""SSM stage: label texts from curated findings + IKI, sentence embeddings (cached per label
snapshot), and the soft label matrix S. ``python -m pipeline.ssm --help``."""

from pipeline.ssm.build import SSM, build_ssm, save_npz, ssm_from_snapshot
from pipeline.ssm.embed import DEFAULT_ENCODER, label_embeddings
from pipeline.ssm.labels import label_text, negation_text
from pipeline.ssm.snapshot import LabelError, LabelOptions, LabelSnapshot, build_snapshot

__all__ = ["SSM", "build_ssm", "save_npz", "ssm_from_snapshot", "DEFAULT_ENCODER", "label_embeddings", "label_text",
           "negation_text", "LabelError", "LabelOptions", "LabelSnapshot", "build_snapshot"]
