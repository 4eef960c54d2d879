"""The remedy search end to end on a tiny random model: real compression (llm-compressor's Wanda),
real generation, the ranking, probes, the confirmation on held-out items and the written recipe.

The dimension is a test one: an item scores 1 when the model gives dense's own greedy answer,
so dense scores 100, the 2:4-pruned model much less, and keeping every block (dense weights)
100 again: a failure with a known way out.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from compressors import compressed_model, parse_variant
from compressors.verify import compression_problems
from trustgate.dimensions.base import Dimension, Item, Outcome, ScenarioData
from trustgate.evaluation.evaluator import Evaluator
from trustgate.evaluation.profiles import EvaluationSettings
from trustgate.gate.policy import load_thresholds
from trustgate.models import ModelHandle, decoder_blocks, load_model, weights_fingerprint
from trustgate.plugin.remedy import CompressorBuilder
from trustgate.remedy import Check, RemedyOptions, RemedySearch, SearchBudget
from trustgate.remedy.report import RECIPE_FILE, write_report
from trustgate.remedy.split import held_out_part, search_part

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [f"Name a colour, then count to {n}." for n in range(24)] + [f"Say a word about {w}." for w in "abcdefgh"]


def agreement_dimension(answers: dict[str, str]) -> Dimension:
    def load(_data: object, scenario: str) -> ScenarioData:
        items = tuple(
            Item(id=f"{scenario}-{i}", messages=(("user", q),), target=answers.get(f"{scenario}-{i}", ""))
            for i, q in enumerate(QUESTIONS)
        )
        return ScenarioData(items=items, source="test questions", max_new_tokens=6)

    def score(item: Item, responses: list[str]) -> Outcome:
        return Outcome(score=float(responses[0] == item.target), refusal=0.0)

    return Dimension(name="utility", scenarios=("first", "second"), load=load, score_item=score)


@pytest.fixture(scope="module")
def four_block_llama(tmp_path_factory: pytest.TempPathFactory, embedded_model_dir: Path) -> ModelHandle:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("four-block-llama")
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return ModelHandle("dense", folder, weights_fingerprint(folder))


def test_search_and_held_out_parts_split_every_scenario_by_sample_key():
    items = tuple(Item(id=f"x{i}", messages=(("user", "q"),), sample_key=f"k{i // 3}") for i in range(30))
    search, rest = search_part(items), held_out_part(items)
    ids, rest_ids = {i.id for i in search}, {i.id for i in rest}
    assert len(search) == len(rest) == 15 and ids.isdisjoint(rest_ids) and ids | rest_ids == {i.id for i in items}
    assert {i.sample_key for i in search}.isdisjoint({i.sample_key for i in rest})  # a key's items stay together
    two = items[:6]  # two sample keys: one each
    assert len(search_part(two)) == len(held_out_part(two)) == 3
    assert search_part(items[:3]) == items[:3] and held_out_part(items[:3]) == ()


def test_remedy_search_end_to_end_on_a_tiny_model(four_block_llama: ModelHandle, tmp_path: Path, cache_root: Path):
    thresholds = load_thresholds(ROOT / "thresholds.toml", "ci")
    settings = EvaluationSettings(
        data=None,  # type: ignore[arg-type]  # the test dimension reads no data
        profile_name="ci",
        profile=thresholds.profiles["ci"],
        cache_root=cache_root / "remedy-test",
        report_dir=tmp_path / "report",
        device="cpu",
        limit=0,
    )
    # Dense's own greedy answers become the targets.
    probe_dimension = agreement_dimension({})
    evaluator = Evaluator(settings)
    answers = {}
    for scenario in probe_dimension.scenarios:
        run = evaluator.run(probe_dimension, scenario, four_block_llama)
        answers.update({item.id: response[0] for item, response in zip(run.items, run.responses, strict=True)})
    evaluator.close()
    dimension = agreement_dimension(answers)
    check = Check(dimension)
    builder = CompressorBuilder(parse_variant("wanda-2:4+cal4"), four_block_llama, settings.cache_root, "fallback")
    options = RemedyOptions(SearchBudget(probes=6, minutes=30, max_size_increase=100), rank_items=3)
    out = tmp_path / "remedy"

    report = RemedySearch(settings, thresholds, four_block_llama, builder, [check], [check], options, out).run()
    lines = write_report(report, out)

    plain = report.search.probes[0]
    assert plain.blocks == () and not plain.passed and plain.details[0]["drop"] > 5
    ranking = report.ranking
    assert ranking is not None and sorted(ranking.order) == [0, 1, 2, 3]
    assert ranking.forward_passes == 3 * (1 + 1 + 4)  # dense, plain, each block restored
    assert all(block.divergence is not None and math.isfinite(block.divergence) for block in ranking.blocks)
    assert ranking.plain_divergence is not None and ranking.plain_divergence > 0
    kept = [p for p in report.search.probes if p.blocks]
    assert kept and len({p.blocks for p in kept}) == len(kept) <= 6
    assert report.outcome == "REMEDY", lines
    blocks = report.confirmed_blocks
    assert blocks and len(blocks) < 4
    # the held-out half (32 items) cannot prove a 3-point margin: the ci profile lets INCONCLUSIVE through
    assert report.confirmation and all(d["passes"] and d["verdict"] != "FAIL" for d in report.confirmation)
    assert lines[0].startswith(f"REMEDY wanda-2:4+cal4: keep blocks {list(blocks)} at dense; size ")
    assert any(line.startswith("probe 1 (plain): plain variant;") for line in lines)
    # The recipe goes back in as a variant and builds the same checkpoint the search confirmed.
    recipe = out / RECIPE_FILE
    spec = parse_variant(f"recipe:{recipe}")
    assert spec.kept_blocks == blocks and spec.plain == "wanda-2:4+cal4"
    remedied = CompressorBuilder(spec, four_block_llama, settings.cache_root, "fallback").build(())
    assert remedied.path == builder.build(blocks).path
    model, _ = load_model(remedied.path, "cpu")
    assert compression_problems(model, spec) == []
    assert (out / "report.md").read_text().count("| ") > 4 and (out / "probes.jsonl").is_file()


def test_pytest_remedy_searches_after_a_failing_gate_and_reports(run_gate, tiny_llama_dir: Path, tmp_path: Path):
    # The random model answers no MMLU question, so a floor of 100 fails every variant (with the
    # base-model INCONCLUSIVE turned off) and even keeping every block finds no remedy: the run
    # goes through the whole path (gate FAIL, plain probe, ranking, budget probe) and says so.
    policy = (ROOT / "thresholds.toml").read_text()
    policy = policy.replace("min_base_answer_rate = 10.0", "min_base_answer_rate = 0.0")
    policy = policy.replace("[dimensions.utility]\n", "[dimensions.utility]\nfloor = 100\n")
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text(policy)
    run = run_gate(
        "--trust-base-model", str(tiny_llama_dir), "--model", "magnitude-2:4", "-k", "utility", "--trust-limit", "6",
        "--trust-thresholds", str(thresholds), "--trust-remedy", "--trust-remedy-probes", "1",
    )  # fmt: skip
    assert run.returncode == 1, run.output  # the gate's verdict stands
    section = run.output.split("trustgate: remedy", 1)[1]
    assert "NO REMEDY magnitude-2:4: keeping the 2 top-ranked blocks (the most the size budget" in section
    assert "probe 1 (plain): plain variant;" in section and "probe 2 (budget): k=2 keep [0, 1];" in section
    folder = run.report_dir / "remedy" / "magnitude-2_4"
    assert (folder / "best-found.toml").is_file() and not (folder / RECIPE_FILE).exists()
    assert "## Ranking" in (folder / "report.md").read_text()


LOG = """\
06:18:31.7585 | compress_module_list | INFO - Quantizing 1 module(s): ['model.layers.0.self_attn.q_proj']
06:18:31.8648 | GPTQ | METRIC - time 0.11s
06:18:31.8649 | GPTQ | METRIC - error 89.12
06:18:31.8694 | compress_module_list | Quantizing 2 module(s): ['model.layers.1.mlp.up', 'model.layers.0.mlp.down']
06:18:31.9393 | GPTQ | METRIC - error 0.50
06:18:31.9394 | GPTQ | METRIC - error 1.25
06:18:32.0000 | compress_modules | INFO - Sparsifying model.layers.1.self_attn.q_proj. using 16 samples
06:18:32.0100 | SGPT | METRIC - error 2.00
06:18:32.0200 | compress_modules | INFO - Sparsifying lm_head. using 16 samples
06:18:32.0300 | SGPT | METRIC - error nan
"""


def test_the_free_signal_sums_llm_compressors_logged_errors_per_block():
    from trustgate.remedy.ranking import logged_errors

    errors = logged_errors(LOG, ["model.layers.0", "model.layers.1"])
    assert errors == {0: pytest.approx(89.12 + 1.25), 1: pytest.approx(0.50 + 2.00)}
    assert logged_errors("no metrics here", ["model.layers.0"]) == {}


def test_a_quantized_block_restored_to_dense_computes_as_dense_and_then_as_the_variant(
    tiny_llama_dir: Path, cache_root: Path
):
    """A dequantized checkpoint's blocks hold scale and shape tensors that dense's have not."""
    import torch

    from trustgate.remedy.ranking import restored_to_dense

    base = ModelHandle("dense", tiny_llama_dir, weights_fingerprint(tiny_llama_dir))
    spec = parse_variant("gptq3+cal8")
    handle, _ = compressed_model(spec, base, cache_root / "compression-test", calibration_source="fallback")
    dense, _ = load_model(base.path, "cpu")
    variant, _ = load_model(handle.path, "cpu")
    ids = torch.arange(3, 40).unsqueeze(0)
    with torch.no_grad():
        dense_logits, variant_logits = dense(input_ids=ids).logits, variant(input_ids=ids).logits
    assert not torch.allclose(dense_logits, variant_logits, atol=1e-3)

    names = decoder_blocks(dense)
    blocks = [variant.get_submodule(name) for name in names]
    states = [dense.get_submodule(name).state_dict() for name in names]
    with restored_to_dense(blocks[0], states[0]), restored_to_dense(blocks[1], states[1]), torch.no_grad():
        assert torch.allclose(variant(input_ids=ids).logits, dense_logits, atol=1e-5)
    with torch.no_grad():
        assert torch.equal(variant(input_ids=ids).logits, variant_logits)


def test_a_search_that_breaks_ends_in_one_line_and_leaves_its_traceback(tmp_path: Path):
    from trustgate.plugin.remedy import guarded
    from trustgate.util.errors import TrustgateError

    def broken() -> list[str]:
        raise RuntimeError("Missing key(s) in state_dict")

    def refused() -> list[str]:
        raise TrustgateError("--trust-remedy-probes", "must be at least 1", "pass a positive number")

    (line,) = guarded(broken, "gptq3", tmp_path / "gptq3")
    assert line.startswith("gptq3: remedy stopped by an unexpected RuntimeError: Missing key(s) in state_dict")
    assert "the gate's verdicts above stand" in line
    assert "Traceback" in (tmp_path / "gptq3" / "error.txt").read_text()
    (line,) = guarded(refused, "gptq3", tmp_path / "other")
    assert line.startswith("gptq3: remedy stopped: ") and "--trust-remedy-probes" in line
    assert guarded(lambda: ["REMEDY ..."], "gptq3", tmp_path) == ["REMEDY ..."]
