"""The checkpoint cache key is the recipe that is applied: change anything that shapes the
compressed weights and the variant is built again, never served stale from the cache."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

import compressors
from compressors import checkpoint_key, compressed_model, parse_variant, pruning, quantization, recipe_for, worker
from compressors.calibration import fallback_calibration
from tests.tiny_models import tiny_causal_lm
from trustgate.models import ModelHandle

BASE = ModelHandle("dense", Path("/nonexistent"), "b" * 64)
CALIBRATION = fallback_calibration(4, 0)


@pytest.fixture(scope="module")
def model():
    return tiny_causal_lm("llama")  # widths 32 (attention) and 64 (MLP input)


def key(name: str, model: Any, calibration=CALIBRATION) -> str:
    spec = parse_variant(name)
    return checkpoint_key(BASE, recipe_for(spec, model), calibration if spec.needs_calibration else None, 512)


def _weights(recipe: dict) -> dict:
    modifiers = recipe["default_stage"]["default_modifiers"]
    quant = modifiers.get("GPTQModifier") or modifiers["QuantizationModifier"]
    return next(iter(quant["config_groups"].values()))["weights"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("symmetric", False), ("group_size", 16), ("num_bits", 3), ("strategy", "channel"), ("type", "float")],
)
def test_every_scheme_field_is_in_the_key(model, field, value):
    recipe = recipe_for(parse_variant("gptq4"), model)
    changed = copy.deepcopy(recipe)
    _weights(changed)[field] = value
    assert checkpoint_key(BASE, changed, CALIBRATION, 512) != checkpoint_key(BASE, recipe, CALIBRATION, 512)


def test_gptq_is_symmetric_and_awq_is_not_and_both_are_keyed(model):
    assert _weights(recipe_for(parse_variant("gptq4"), model))["symmetric"] is True
    assert _weights(recipe_for(parse_variant("awq4"), model))["symmetric"] is False
    assert key("gptq4", model) != key("awq4", model)


def test_the_ignore_list_is_in_the_key(model, monkeypatch):
    before = key("gptq4", model)
    monkeypatch.setattr(quantization, "EXCLUDED", ("lm_head", "q_proj"))
    assert key("gptq4", model) != before


def test_the_group_size_rule_is_in_the_key(model, monkeypatch):
    before = key("awq4", model)
    monkeypatch.setattr("compressors.layers.group_size_for", lambda width, preferred=128: 16)
    assert key("awq4", model) != before


def test_a_change_to_the_magnitude_pruning_code_is_in_the_key(model, monkeypatch):
    before = key("magnitude-2:4", model)
    monkeypatch.setattr(pruning, "magnitude_mask", lambda weight, sparsity, structure: weight != 0)
    assert key("magnitude-2:4", model) != before
    assert key("magnitude-2:4", model) != key("magnitude-4:8", model) != key("magnitude-50", model)


def test_calibration_texts_seed_and_pipeline_are_in_the_key(model, monkeypatch):
    before = key("wanda-2:4", model)
    assert key("wanda-2:4", model, fallback_calibration(4, 1)) != before
    assert key("wanda-2:4", model, fallback_calibration(8, 0)) != before
    monkeypatch.setattr(worker, "CALIBRATION_BATCH_SIZE", 4)
    assert key("wanda-2:4", model) != before


def test_the_base_weights_and_library_versions_are_in_the_key(model, monkeypatch):
    recipe = recipe_for(parse_variant("sparsegpt-2:4"), model)
    before = checkpoint_key(BASE, recipe, CALIBRATION, 512)
    other_base = ModelHandle("dense", Path("/nonexistent"), "c" * 64)
    assert checkpoint_key(other_base, recipe, CALIBRATION, 512) != before
    monkeypatch.setattr(compressors, "library_versions", lambda: {"llmcompressor": "0.0.0"})
    assert checkpoint_key(BASE, recipe, CALIBRATION, 512) != before


def test_the_worker_applies_exactly_the_keyed_recipe(tiny_llama_dir: Path, tmp_path: Path, monkeypatch):
    jobs: list[dict] = []

    def fake_worker(job: dict, staging: Path, label: str) -> dict:
        jobs.append(job)
        (staging / "model.safetensors").write_bytes(b"")  # stands in for the saved checkpoint
        return {}

    monkeypatch.setattr(compressors, "_run_worker", fake_worker)
    monkeypatch.setattr(compressors, "weights_fingerprint", lambda path: "f" * 64)
    base = ModelHandle("dense", tiny_llama_dir, "b" * 64)
    handle, metadata = compressed_model(parse_variant("gptq4+cal4"), base, tmp_path, calibration_source="fallback")
    (job,) = jobs
    calibration = fallback_calibration(4, 0)
    expected = checkpoint_key(base, job["recipe"], calibration, compressors.DEFAULT_MAX_SEQ_LENGTH)
    assert handle.path.name.endswith(expected[:16]) and metadata["recipe"] == job["recipe"]
    assert _weights(job["recipe"])["group_size"] == 32  # the tiny model's width 96 -> 32
