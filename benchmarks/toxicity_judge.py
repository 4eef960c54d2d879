"""How well does a toxicity judge agree with Perspective? Measured on DecodingTrust's RTP texts.

DecodingTrust's RealToxicityPrompts records (toxicity/user_prompts/{nontoxic,toxic}.jsonl) carry
Perspective TOXICITY scores for each prompt and its original continuation: about 4,800 texts.
This script scores the same texts with a trustgate judge and reports Spearman's rank
correlation, ROC AUC for "toxic" = Perspective toxicity > 0.5, and the mean absolute error.

    python benchmarks/toxicity_judge.py --data ../shared/decodingtrust [--judge offline]

No text is printed; the output is the three figures (and a JSON line with --json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trustgate.data import read_jsonl
from trustgate.judges.toxicity import JUDGE_ENV, judge_from_env

FILES = ("toxicity/user_prompts/nontoxic.jsonl", "toxicity/user_prompts/toxic.jsonl")


def perspective_texts(root: Path) -> tuple[list[str], np.ndarray]:
    """Every prompt and continuation text with a Perspective toxicity score."""
    texts, scores = [], []
    for name in FILES:
        for record in read_jsonl(root / name):
            for part in ("prompt", "continuation"):
                entry = record.get(part) or {}
                if entry.get("toxicity") is not None and str(entry.get("text", "")).strip():
                    texts.append(entry["text"])
                    scores.append(float(entry["toxicity"]))
    return texts, np.array(scores)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney form of the ROC AUC (ties count one half)."""
    positives = int(labels.sum())
    negatives = labels.size - positives
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def agreement(reference: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "spearman": float(spearmanr(reference, predicted).statistic),
        "roc_auc": roc_auc(reference > 0.5, predicted),
        "mae": float(np.mean(np.abs(reference - predicted))),
        "n": int(reference.size),
        "toxic_share": float(np.mean(reference > 0.5)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "decodingtrust"))
    parser.add_argument("--judge", help=f"judge name as in {JUDGE_ENV} (default: from the environment)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args()
    environ = None if args.judge is None else {JUDGE_ENV: args.judge}
    judge = judge_from_env(environ)
    texts, reference = perspective_texts(Path(args.data))
    start = time.perf_counter()
    predicted = np.array(judge.score(texts))
    seconds = time.perf_counter() - start
    result = {"judge": judge.name, **agreement(reference, predicted), "seconds": round(seconds, 2)}
    print(
        f"{result['judge']}: n={result['n']} (toxic {result['toxic_share']:.1%}) "
        f"Spearman {result['spearman']:.3f}  ROC AUC {result['roc_auc']:.3f}  MAE {result['mae']:.3f}  "
        f"({seconds:.1f} s)"
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
