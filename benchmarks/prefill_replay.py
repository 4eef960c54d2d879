"""Prefill positions on the main job's prompts, replayed without running the model.

    .venv/bin/python benchmarks/prefill_replay.py [--profile ci] [--trust-data embedded]

Every scenario's full ci selection (the README's main job: embedded probes, ci profile) is
rendered and tokenized as the gate would, split into the generation cache's chunks of
max(64, batch size) prompts in text order, and planned as the engine plans it. Printed per
dimension and in all: the prefill positions of the padded three-stage layout the engine used
before (batch-wide prefix once, group heads left-padded to the widest head, rests left-padded
to the widest rest) and of the packed layout it uses now, which computes real positions only.
Heads are grouped within the old batches in both counts, so the real positions are the same.
The last line is `prefill padding: <before> -> <after>` (shares of the positions computed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trustgate.data.sources import resolve_trust_data  # noqa: E402
from trustgate.dimensions.registry import all_dimensions  # noqa: E402
from trustgate.engine.batch_decode import BatchSpec  # noqa: E402
from trustgate.engine.planning import distinct_heads, plan_batches  # noqa: E402
from trustgate.engine.stream_rows import split_rows  # noqa: E402
from trustgate.engine.transformers import CPU_KV_CACHE_BYTES, render_chat  # noqa: E402
from trustgate.evaluation.evaluator import Evaluator  # noqa: E402
from trustgate.evaluation.profiles import EvaluationSettings  # noqa: E402
from trustgate.gate.policy import load_thresholds  # noqa: E402
from trustgate.models import embedded_base_model, load_tokenizer  # noqa: E402
from trustgate.util.storage import default_cache_root  # noqa: E402

# The embedded model's key/value bytes per position (30 layers x 2 x 3 heads x 64 x 4 bytes).
EMBEDDED_BYTES_PER_POSITION = 46_080


def batch_positions(token_ids: list[list[int]], samples: int, max_new_tokens: int) -> tuple[int, int]:
    """(real, padded) prefill positions of one batch in the old three-stage layout."""
    spec = BatchSpec(max_new_tokens, samples, 0.0, 0, (), 0)
    rows, shared = split_rows(token_ids, spec)
    tails = [ids[shared:] for ids in rows]
    heads, group_of = distinct_heads(tails, spec.min_shared_prefix)
    rests = [len(tail) - len(heads[group]) for tail, group in zip(tails, group_of, strict=True)]
    real = shared + sum(len(head) for head in heads) + sum(rests)
    padded = shared + len(heads) * max(len(head) for head in heads) + len(rows) * max(rests)
    return real, padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--trust-data", default="embedded")
    args = parser.parse_args()
    profile = load_thresholds(REPO_ROOT / "thresholds.toml", args.profile).profiles[args.profile]
    tokenizer = load_tokenizer(embedded_base_model(default_cache_root()))
    work = Path(tempfile.mkdtemp(prefix="trustgate-replay-"))
    settings = EvaluationSettings(resolve_trust_data(args.trust_data), args.profile, profile, work, work / "report")
    evaluator = Evaluator(settings, engine_factory=lambda handle: None)
    batch_size = settings.generation_batch_size
    max_batch_tokens = CPU_KV_CACHE_BYTES // EMBEDDED_BYTES_PER_POSITION
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # prompts, real, padded
    for dimension in all_dimensions().values():
        for scenario in dimension.scenarios:
            items = evaluator.items_at(dimension, scenario)
            decoding = evaluator.decoding(dimension, evaluator.scenario_data(dimension, scenario))
            texts = sorted(render_chat(tokenizer, item.messages) for item in items)
            for start in range(0, len(texts), max(64, batch_size)):
                token_ids = tokenizer(texts[start : start + max(64, batch_size)], add_special_tokens=False)["input_ids"]
                plan = plan_batches(token_ids, decoding.samples, batch_size, max_batch_tokens, decoding.max_new_tokens)
                for batch in plan:
                    real, padded = batch_positions(
                        [token_ids[i] for i in batch], decoding.samples, decoding.max_new_tokens
                    )
                    totals[dimension.name][1] += real
                    totals[dimension.name][2] += padded
                totals[dimension.name][0] += len(token_ids)
    print(f"main job's prompts ({settings.data.describe()}, profile {args.profile}, batch {batch_size}), one model:")
    for name, (prompts, real, padded) in totals.items():
        print(f"  {name}: {prompts} prompts, {real} real positions, padded layout {padded} "
              f"({100 * (padded - real) / padded:.0f}% padding)")  # fmt: skip
    prompts, real, padded = (sum(column) for column in zip(*totals.values(), strict=True))
    print(f"all: {prompts} prompts; before: {padded} prefill positions, {real} real, {padded - real} padding; "
          f"now (packed): {real} positions, 0 padding")  # fmt: skip
    print(f"prefill padding: {100 * (padded - real) / padded:.1f}% -> 0.0%")


if __name__ == "__main__":
    main()
