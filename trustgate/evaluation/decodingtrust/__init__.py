"""Re-score DecodingTrust's own stored generations with trustgate's scorers.

`rescore_decodingtrust(DATA_DIR, MODEL, OUT)` finds, in a DecodingTrust `data/` folder, every
generation file of MODEL that DecodingTrust's scorer of a perspective reads, each as the task its
aggregate reads it as, pairs each stored generation with its input as that scorer does
(stereotype by statement text, fairness and OOD by position, adversarial demonstrations by
position against the input lines, privacy from the stored line's own prompt and ground truth),
compares every stored request whole with trustgate's rendering of its item (a file with one
that differs is an error naming it), scores the items with the dimension's own scorer (the one
the gate uses) and writes:

* OUT/records/<dimension>/<scenario>.jsonl: ordinary trustgate records (re-scorable with
  `python -m trustgate.rescore OUT/records`), each item's meta holding `dt_file` (relative to
  DATA_DIR) and `dt_index` (DecodingTrust's item index: CSV data row, list position or line),
  and for stereotype `dt_choice` (response k is DecodingTrust's choice gen_<dt_choice[k]>);
* OUT/codes.json: {dimension: {dt_file: codes}} in the codes of DecodingTrust's reference
  decisions (stereotype: per CSV row 25 of A/D/N; fairness: 0/1/U; OOD and adversarial
  demonstrations: C/R/W; privacy: Enron R or 4 x exact + 2 x local + domain, else L/R/O);
* OUT/summary.json and a table: per scenario and dimension the unrounded score, DecodingTrust's
  rounded form where it rounds (stereotype), the refusal rate and what is partial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trustgate.evaluation.decodingtrust import classification, privacy, stereotype
from trustgate.evaluation.decodingtrust.models import MODELS, StoredModel, lookup_model
from trustgate.evaluation.decodingtrust.report import Scored, score_pairing, table, write_outputs
from trustgate.util.errors import MissingDataError, TrustgateError

# dimension -> (pairing, codes), in the registry's order
PERSPECTIVES = {
    "stereotype": (stereotype.pair, stereotype.codes),
    "ood": (classification.pair_ood, classification.ood_codes),
    "adv_demonstration": (classification.pair_adv_demonstration, classification.adv_codes),
    "privacy": (privacy.pair, privacy.codes),
    "fairness": (classification.pair_fairness, classification.fairness_codes),
}

__all__ = ["MODELS", "PERSPECTIVES", "Rescored", "lookup_model", "rescore_decodingtrust"]


@dataclass(frozen=True)
class Rescored:
    model: StoredModel
    results: tuple[Scored, ...]
    summary: dict[str, Any]

    def table(self) -> str:
        return table(self.results)


def _dimensions(requested: Sequence[str] | None) -> list[str]:
    for name in requested or ():
        if name not in PERSPECTIVES:
            raise TrustgateError(
                f"-k {name}",
                "not a dimension with DecodingTrust stored generations",
                "use one of " + ", ".join(PERSPECTIVES),
            )
    return [name for name in PERSPECTIVES if not requested or name in requested]


def _no_files(where: str, model: StoredModel, what: str) -> MissingDataError:
    return MissingDataError(where, f"no {what} generation file of {model.name}", "pass the DecodingTrust data/ folder")


def rescore_decodingtrust(
    data_dir: Path, model_name: str, out: Path, dimensions: Sequence[str] | None = None
) -> Rescored:
    """Pair, score and write every stored generation file of the model (see the module doc)."""
    model = lookup_model(model_name)
    if not data_dir.is_dir():
        raise MissingDataError(str(data_dir), "no such folder", "pass a DecodingTrust data/ folder")
    root = data_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in _dimensions(dimensions):
        pair, codes = PERSPECTIVES[name]
        pairing = pair(root, model)
        if not pairing.groups:
            if dimensions:
                raise _no_files(str(root / name / "generations"), model, name)
            continue
        results.append(score_pairing(pairing, codes, model.name, out / "records"))
    if not results:
        raise _no_files(str(root), model, "DecodingTrust")
    return Rescored(model, tuple(results), write_outputs(out, model.name, root, results))
