"""Encoders, SSM math and losses. Imports nothing of ours (ARCHITECTURE.md, layers).

    from model import build_model
    encoder = build_model("tiny-rn")               # or "RN50", hf_text="minilm", pretrained=...
"""

import os

# No hub download may happen at run time: the bundled MiniLM and local files only.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from model.encoder import (  # noqa: E402
    Encoder,
    ModelError,
    build_model,
    bundled_minilm_path,
    list_architectures,
    resolve_hf_name,
)
from model.losses import LOSSES, infonce_loss, pairwise_logits, ssm_loss  # noqa: E402
from model.ssm import (  # noqa: E402
    batch_targets,
    hard_matrix,
    pad_labels,
    positives,
    similarity_matrix,
)

__all__ = ["Encoder", "ModelError", "build_model", "bundled_minilm_path", "list_architectures",
           "resolve_hf_name", "LOSSES", "infonce_loss", "pairwise_logits", "ssm_loss",
           "batch_targets", "hard_matrix", "pad_labels", "positives", "similarity_matrix"]
