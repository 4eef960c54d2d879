"""How well does each toxicity judge agree with Perspective? Held-out figures only.

DecodingTrust's data carries Perspective TOXICITY scores for 7,173 texts: each RealToxicityPrompts
record's prompt and original continuation (toxicity/user_prompts/{nontoxic,toxic}.jsonl, 4,773
texts: the fit set) and its GPT-3.5/GPT-4 written challenging prompts (the two *.filtered.jsonl
files, 2,400 texts, never fitted on: the held-out set; nearly all toxic, so ROC AUC is not defined
there). Per judge this prints Spearman's rank correlation, ROC AUC for "toxic" = Perspective > 0.5,
the mean absolute error, and per prompt set the dimension's form of the score with one sample per
prompt, 100 x (1 - mean toxicity), under Perspective and under the judge.

A fitted judge is never measured on texts it was fitted on: minilm-ridge (the default judge,
trustgate.judges.minilm) is measured on the fit set by 2-fold cross-fitting (folds by a hash of the
prompt, so a prompt and its continuation stay together; each fold predicted by the recipe fitted
on the other fold, its penalty chosen inside that fold), and on the held-out set by the shipped
weights (fitted on the whole fit set). alt-profanity-check and Perspective-free hub judges are
measured as they are.

    python benchmarks/toxicity_judge.py [--data ../shared/decodingtrust] [--judge hub:<id>@<rev>]
    python benchmarks/toxicity_judge.py --readme README.md   # also rewrites README's judge table
    python benchmarks/toxicity_judge.py --fit                # rebuilds trustgate/judges/minilm_ridge.json

The last line is `toxicity judge: <default judge> spearman <s> auc <a>` (held-out, fit set).
No text is printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trustgate.data import read_jsonl
from trustgate.dimensions.toxicity import PROMPT_FILES
from trustgate.judges import minilm
from trustgate.judges.toxicity import JUDGE_ENV, ProfanityCheckJudge, judge_from_env
from trustgate.util.storage import file_sha256

FIT_SETS = ("nontoxic", "toxic")  # RealToxicityPrompts: prompt and continuation scored
HELD_OUT_SETS = ("toxic_gpt3.5", "toxic_gpt4")  # DecodingTrust's challenging prompts: the prompt scored
TABLE_START, TABLE_END = "<!-- toxicity-judge-table:start -->", "<!-- toxicity-judge-table:end -->"


@dataclass(frozen=True)
class Texts:
    texts: list[str]
    perspective: np.ndarray
    prompt_set: np.ndarray
    group: list[str]  # the prompt a text belongs to: its fold

    def part(self, sets: tuple[str, ...]) -> np.ndarray:
        return np.isin(self.prompt_set, sets)


def scored_texts(root: Path) -> Texts:
    """Every text of DecodingTrust's toxicity prompt files that carries a Perspective score."""
    texts, scores, sets, groups = [], [], [], []
    for prompt_set in (*FIT_SETS, *HELD_OUT_SETS):
        for record in read_jsonl(root / PROMPT_FILES[prompt_set]):
            prompt = str(record["prompt"]["text"])
            for part in ("prompt", "continuation"):
                entry = record.get(part) or {}
                value = entry.get("toxicity", (entry.get("score") or {}).get("toxicity"))
                if value is not None and str(entry.get("text", "")).strip():
                    texts.append(entry["text"])
                    scores.append(float(value))
                    sets.append(prompt_set)
                    groups.append(prompt)
    return Texts(texts, np.array(scores), np.array(sets), groups)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney form of the ROC AUC (ties count one half)."""
    positives = int(labels.sum())
    negatives = labels.size - positives
    if not positives or not negatives:
        return float("nan")  # one class only (DecodingTrust's GPT-written prompts are nearly all toxic)
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def agreement(reference: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "spearman": float(spearmanr(reference, predicted).statistic),
        "roc_auc": roc_auc(reference > 0.5, predicted),
        "mae": float(np.mean(np.abs(reference - predicted))),
        "n": int(reference.size),
    }


def cross_fitted(features: np.ndarray, data: Texts, rows: np.ndarray) -> np.ndarray:
    """minilm-ridge's predictions for `rows`, each fold by the recipe fitted on the other fold."""
    folds = np.array([zlib.crc32(data.group[i].encode()) % 2 for i in np.flatnonzero(rows)])
    x, y = features[rows], data.perspective[rows]
    groups = [data.group[i] for i in np.flatnonzero(rows)]
    predicted = np.empty(len(y))
    for fold in (0, 1):
        train = folds != fold
        weights, _ = minilm.fit(x[train], y[train], [g for g, t in zip(groups, train, strict=True) if t])
        predicted[folds == fold] = minilm.predict(x[folds == fold], weights)
    return predicted


def fit_and_write(data: Texts, features: np.ndarray, root: Path) -> None:
    rows = data.part(FIT_SETS)
    groups = [g for g, r in zip(data.group, rows, strict=True) if r]
    weights, alpha = minilm.fit(features[rows], data.perspective[rows], groups)
    trained_on = {
        "texts": int(rows.sum()),
        "files": {PROMPT_FILES[s]: file_sha256(root / PROMPT_FILES[s]) for s in FIT_SETS},
    }
    document = minilm.weights_document(weights, alpha, trained_on)
    minilm.WEIGHTS_FILE.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {minilm.WEIGHTS_FILE} (alpha {alpha}, {rows.sum()} texts)")


def measure(name: str, data: Texts, predicted: np.ndarray, how: str, seconds: float) -> dict:
    """Agreement on the fit set, the held-out set and all texts, and the per-set scores."""
    result: dict = {"judge": name, "how": how, "seconds": round(seconds, 1)}
    for label, sets in (("fit_set", FIT_SETS), ("held_out", HELD_OUT_SETS), ("all", (*FIT_SETS, *HELD_OUT_SETS))):
        rows = data.part(sets)
        result[label] = agreement(data.perspective[rows], predicted[rows])
    result["per_set"] = {
        s: (
            100 * (1 - data.perspective[data.prompt_set == s].mean()),
            100 * (1 - predicted[data.prompt_set == s].mean()),
        )
        for s in (*FIT_SETS, *HELD_OUT_SETS)
    }
    return result


def print_result(result: dict) -> None:
    print(f"{result['judge']}  ({result['how']}; {result['seconds']} s)")
    for label in ("fit_set", "held_out", "all"):
        a = result[label]
        print(f"  {label:<9} n={a['n']:>5}  Spearman {a['spearman']:.3f}  ROC AUC {_auc(a)}  MAE {a['mae']:.3f}")
    cells = "  ".join(f"{s} {p:.1f}/{j:.1f}" for s, (p, j) in result["per_set"].items())
    print(f"  100 x (1 - mean toxicity), Perspective/judge: {cells}")


def _auc(figures: dict) -> str:
    return "n/a" if np.isnan(figures["roc_auc"]) else f"{figures['roc_auc']:.3f}"


def markdown(results: list[dict]) -> str:
    lines = [
        "| judge | measured | Spearman, RTP texts | ROC AUC, RTP | MAE, RTP | Spearman, MAE on GPT-written prompts | "
        "score per prompt set, Perspective / judge (nontoxic, toxic, GPT-3.5, GPT-4) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        fit, held = r["fit_set"], r["held_out"]
        sets = ", ".join(f"{p:.1f} / {j:.1f}" for p, j in r["per_set"].values())
        lines.append(
            f"| `{r['judge']}` | {r['how']} | {fit['spearman']:.3f} | {_auc(fit)} | {fit['mae']:.3f} | "
            f"{held['spearman']:.3f}, {held['mae']:.3f} | {sets} |"
        )
    return "\n".join(lines)


def rewrite_readme(path: Path, table: str) -> None:
    text = path.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    path.write_text(text[:start] + "\n" + table + "\n" + text[end:])
    print(f"rewrote the judge table in {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "decodingtrust"))
    parser.add_argument("--judge", action="append", default=[], help=f"also measure this {JUDGE_ENV} value")
    parser.add_argument("--readme", type=Path, help="rewrite the judge table between the markers in this file")
    parser.add_argument("--fit", action="store_true", help="rebuild the default judge's weights file first")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per judge")
    args = parser.parse_args()
    root = Path(args.data)
    data = scored_texts(root)
    start = time.perf_counter()
    profanity_judge = ProfanityCheckJudge()
    profanity = np.array(profanity_judge.score(data.texts))
    profanity_seconds = time.perf_counter() - start
    features = minilm.features(data.texts, profanity)
    feature_seconds = time.perf_counter() - start
    if args.fit:
        fit_and_write(data, features, root)
    default, recipe_judge = judge_from_env({}), minilm.MiniLMRidgeJudge()
    shipped = minilm.predict(features, recipe_judge.weights)
    held_out = data.part(HELD_OUT_SETS)
    recipe = np.where(held_out, shipped, 0.0)
    recipe[~held_out] = cross_fitted(features, data, ~held_out)
    results = [
        measure(profanity_judge.name, data, profanity, "as shipped", profanity_seconds),
        measure(recipe_judge.name, data, recipe, "fit set 2-fold cross-fitted; GPT prompts by the shipped weights",
                feature_seconds),
    ]  # fmt: skip
    for choice in args.judge:
        judge, begin = judge_from_env({JUDGE_ENV: choice}), time.perf_counter()
        results.append(
            measure(judge.name, data, np.array(judge.score(data.texts)), "as is", time.perf_counter() - begin)
        )
    for result in results:
        print_result(result)
        if args.json:
            print(json.dumps(result))
    if args.readme:
        rewrite_readme(args.readme, markdown(results))
    if default.name != recipe_judge.name:
        print(f"note: the default judge is {default.name}, not the minilm-ridge measured above")
    best = results[1]["fit_set"]
    print(f"toxicity judge: {recipe_judge.name} spearman {best['spearman']:.3f} auc {best['roc_auc']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
