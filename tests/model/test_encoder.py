"""The open_clip dual encoder: factory names, JSON configs, HF text tower, local checkpoints."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from model import ModelError, build_model, bundled_minilm_path


def test_tiny_config_builds_through_open_clip_and_embeds():
    enc = build_model("tiny-rn")
    assert enc.image_size == 32 and enc.embed_dim == 64
    tokens = enc.tokenize(["small left pleural effusion.", "no pneumothorax"])
    image, text, scale, bias = enc(torch.rand(3, 3, 32, 32), tokens)
    assert image.shape == (3, 64) and text.shape == (2, 64)
    assert torch.allclose(image.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert scale.item() == pytest.approx(1.0)  # the SSM losses stall at 1/0.07 (ARCHITECTURE.md)
    assert bias is None


def test_image_size_and_logit_start_are_configurable():
    enc = build_model("tiny-rn", image_size=64, init_logit_scale=1 / 0.07, init_logit_bias=-2.0)
    assert enc.image_size == 64
    assert enc.encode_image(torch.rand(1, 3, 64, 64)).shape == (1, 64)
    assert enc.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert enc.logit_bias.item() == pytest.approx(-2.0)


def test_pretrained_local_checkpoint_loads_the_same_weights(tmp_path: Path):
    torch.manual_seed(1)
    source = build_model("tiny-rn")
    with torch.no_grad():
        source.clip.logit_scale.fill_(0.25)
    run_style, plain = tmp_path / "step-3.pt", tmp_path / "open_clip.pt"
    torch.save({"state_dict": source.clip.state_dict(), "step": 3}, run_style)
    torch.save(source.clip.state_dict(), plain)
    for path in (run_style, plain):
        loaded = build_model("tiny-rn", pretrained=str(path))
        for key, value in source.clip.state_dict().items():
            assert torch.equal(loaded.clip.state_dict()[key], value), key


def test_checkpoint_of_another_architecture_is_one_clear_error(tmp_path: Path):
    path = tmp_path / "small.pt"
    torch.save(build_model("small-rn").clip.state_dict(), path)
    with pytest.raises(ModelError, match="another architecture than tiny-rn"):
        build_model("tiny-rn", pretrained=str(path))


@pytest.mark.parametrize("name,pretrained,message", [
    ("no-such-arch", None, "not an open_clip architecture"),
    ("tiny-rn", "laion9000", "neither a file nor an open_clip tag"),
])
def test_bad_names_are_clear_errors(name, pretrained, message):
    with pytest.raises(ModelError, match=message):
        build_model(name, pretrained=pretrained)


def test_hf_text_tower_is_the_bundled_minilm_offline():
    from transformers import AutoModel

    enc = build_model("tiny-rn", hf_text="minilm")
    reference = AutoModel.from_pretrained(bundled_minilm_path())
    ours = enc.clip.text.transformer.embeddings.word_embeddings.weight
    assert torch.equal(ours, reference.embeddings.word_embeddings.weight)  # pretrained, not random
    tokens = enc.tokenize(["pleural effusion"])
    assert tokens[0, 0].item() == 101  # BERT's [CLS]: the HF tokenizer, not CLIP's BPE
    assert enc.encode_text(tokens, normalize=True).shape == (1, 64)
