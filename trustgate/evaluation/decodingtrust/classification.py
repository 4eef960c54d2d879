"""Fairness, OOD and adversarial demonstrations: generation lists paired with inputs by position.

DecodingTrust's scorers zip a generation list with the items built from the input file, so
entry i answers item i; the counts must agree. Where the file kept its requests (fairness, OOD)
each is compared whole with trustgate's rendering of the item it is paired with (every message);
a file with any that differs is an error naming it, since its replies answer another task.
`dt_index` = list position.
* fairness: `fairness/generations/<model>_adult_{0,16,32}_200.jsonl`, the zero-shot (test base
  rate 0.0) and the 16/32-shot fair-demonstration settings; the other 8 of DecodingTrust's 11
  settings have no stored generations, so the score is partial;
* OOD: each file as the task DecodingTrust's aggregate reads it as: knowledge qa2023
  standard/idk 0-shot, the 10 shifted styles 0-shot, qa2020 5-shot with 4 MMLU demonstration
  domains x 3 runs, and 4 styles 8-shot with `base` demonstrations x 3 runs (stored as
  `<style>_<model>_ood_8-shot_<run>`, task `<style>_base_<run>`); the `_id_8-shot_` files
  (in-style demonstrations, task `<style>_<style>_<run>`) are scored as scenario
  style_few_shot_in_style, outside the score, as DecodingTrust's aggregate leaves them out;
* adversarial demonstrations: counterfactual, spurious and backdoor (`_asr` scored; `_cacc`, the
  clean accuracy DecodingTrust requires before it reports backdoor, in scenario backdoor_cacc),
  against the input lines of the same folder and seed.
Codes: fairness the prediction 0/1 or U (unparsed); OOD and adv-demo C (correct), R (refusal), W.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from trustgate.data import TrustData, read_jsonl
from trustgate.dimensions import adv_demonstration as adv
from trustgate.dimensions import fairness, ood
from trustgate.dimensions.base import Item, Outcome
from trustgate.evaluation.decodingtrust.models import StoredModel
from trustgate.evaluation.decodingtrust.pairing import Pairing, by_position, first_present
from trustgate.util.errors import MissingDataError

FAIRNESS_FILES = {
    "adult_0shot_test_br0.0": "adult_0_200",
    "adult_16shot_fair_demo": "adult_16_200",
    "adult_32shot_fair_demo": "adult_32_200",
}
OOD_STYLE_FILES = {"augment": "aug", "shake_w": "shake_pert"}  # DecodingTrust task -> file name stem
OOD_DOMAINS = ("global_facts", "machine_learning", "moral_scenarios", "us_foreign_policy")
ADV = "adv_demonstration"


def _pair_files(
    root: Path,
    pairing: Pairing,
    scenario: str,
    files: Sequence[tuple[Sequence[str], str]],
    inputs: Callable[[str], tuple[list[Item], str]],
    prefix: bool = False,
    keys_are_tasks: bool = False,
    needed: bool = True,
) -> None:
    """For each (generation file candidates, key) the first present file is paired with the items
    `inputs(key)` gives (and the input file's name, for messages). `keys_are_tasks`: the key is
    the task name DecodingTrust's aggregate reads the file as. Absent files are counted when the
    score `needed` them."""
    absent = []
    for candidates, key in files:
        dt_file = first_present(root, candidates)
        if dt_file is None:
            absent.append(candidates[0])
            continue
        try:
            items, source = inputs(key)
        except MissingDataError as exc:
            pairing.note(scenario, f"{dt_file} left out: its input {exc.culprit} is absent")
            continue
        task = key if keys_are_tasks else None
        pairing.groups.append(by_position(root, scenario, dt_file, items, source, prefix, task))
    if needed:
        pairing.missing(scenario, absent, len(files))


def pair_fairness(root: Path, model: StoredModel) -> Pairing:
    pairing = Pairing("fairness")
    data = TrustData("local", root)
    for scenario in FAIRNESS_FILES:
        gen = f"fairness/generations/{model.name}_{FAIRNESS_FILES[scenario]}.jsonl"
        source = f"{fairness.DATA_DIR}/{fairness.SETTINGS[scenario].stem}.jsonl"
        _pair_files(root, pairing, scenario, [([gen], scenario)], lambda s, src=source: (_load(data, fairness, s), src))
    if pairing.groups:
        pairing.remarks.append(
            f"DecodingTrust stored generations for {len(FAIRNESS_FILES)} of its {len(fairness.SCENARIOS)} settings; "
            "its fairness score needs all of them"
        )
    return pairing


def _load(data: TrustData, module, scenario: str) -> list[Item]:
    return list(module.load(data, scenario).items)


def _ood_files(model: StoredModel, scenario: str) -> list[tuple[list[str], str]]:
    """(generation file candidates, DecodingTrust task name) of one OOD part."""

    def names(folder: str, stem: str) -> list[str]:
        tokens = model.tokens if "8-shot" not in stem else model.tokens[::-1]  # 8-shot files: the full name
        return [f"ood/generations/{folder}/{stem.format(m=token)}.jsonl" for token in tokens]

    if scenario == "knowledge_zero_shot":
        return [(names("knowledge", "qa2023_{m}_standard_0-shot"), "qa_2023"),
                (names("knowledge", "qa2023_{m}_idk_0-shot"), "qa_2023_idk")]  # fmt: skip
    if scenario == "style_zero_shot":
        return [(names("styles", f"{OOD_STYLE_FILES.get(s, s)}_{{m}}_standard_0-shot"), s) for s in ood.SHIFTED_STYLES]
    if scenario == "knowledge_few_shot":
        return [
            (names("knowledge", f"{domain}_qa2020_{{m}}_5-shot_{run}"), f"qa_2020_{domain}_{run}")
            for domain in OOD_DOMAINS
            for run in range(3)
        ]
    # DecodingTrust stored <style>_base_<run> (demonstrations from `base`, read by its aggregate)
    # as ..._ood_8-shot_<run>, and <style>_<style>_<run> (in-style demonstrations) as ..._id_8-shot_<run>
    kind, demos = ("id", None) if scenario == ood.IN_STYLE_FEW_SHOT else ("ood", "base")
    return [
        (names("styles", f"{style}_{{m}}_{kind}_8-shot_{run}"), f"{style}_{demos or style}_{run}")
        for style in ood.FEW_SHOT_STYLES
        for run in range(3)
    ]


def pair_ood(root: Path, model: StoredModel) -> Pairing:
    pairing = Pairing("ood")
    data = TrustData("local", root)
    for scenario in (*ood.SCENARIOS, ood.IN_STYLE_FEW_SHOT):
        by_task: dict[str, list[Item]] = {}

        def inputs(task: str, scenario=scenario, by_task=by_task) -> tuple[list[Item], str]:
            if not by_task:
                for item in _load(data, ood, scenario):
                    by_task.setdefault(item.meta["subtask"], []).append(item)
            source = ood.KNOWLEDGE_FILE if scenario.startswith("knowledge") else ood.STYLE_FILE
            return by_task.get(task, []), f"{source} ({task})"

        needed = scenario in ood.SCENARIOS
        _pair_files(root, pairing, scenario, _ood_files(model, scenario), inputs, True, True, needed)
    in_style = sum(group.scenario == ood.IN_STYLE_FEW_SHOT for group in pairing.groups)
    if in_style:
        pairing.remarks.append(
            f"{ood.IN_STYLE_FEW_SHOT}: {in_style} files with in-style demonstrations (tasks <style>_<style>_<run>) "
            "scored for comparison; DecodingTrust's OOD score does not read them"
        )
    return pairing


def _adv_files(model: StoredModel, scenario: str) -> list[tuple[list[str], tuple]]:
    kind = "asr" if scenario == "backdoor" else "cacc"
    files = []
    for task, message_key, folder, seeds in adv.settings("backdoor" if scenario.startswith("backdoor") else scenario):
        if scenario.startswith("backdoor"):
            folder = f"{folder[: -len('_asr')]}_{kind}"
        for seed in seeds:
            files.append(([f"{ADV}/generations/{folder}/{model.name}_{seed}.jsonl"], (task, message_key, folder, seed)))
    return files


def pair_adv_demonstration(root: Path, model: StoredModel) -> Pairing:
    pairing = Pairing(ADV)
    for scenario in (*adv.SCENARIOS, "backdoor_cacc"):

        def inputs(key: tuple, scenario=scenario) -> tuple[list[Item], str]:
            task, message_key, folder, seed = key
            source = f"{ADV}/{folder}/{seed}.jsonl"
            records = read_jsonl(TrustData("local", root).path(source))
            return adv.file_items(scenario, task, message_key, seed, records), source

        _pair_files(root, pairing, scenario, _adv_files(model, scenario), inputs)
    if "backdoor_cacc" in pairing.partial:
        pairing.note("backdoor", "clean-accuracy (_cacc) files incomplete: DecodingTrust requires them before it "
                     "reports backdoor")  # fmt: skip
    return pairing


def _letters(outcomes: Sequence[Outcome], table: dict[str, str], default: str) -> str:
    return "".join(table.get(outcome.labels[0], default) for outcome in outcomes)


def fairness_codes(_group, outcomes: Sequence[Outcome]) -> str:
    return _letters(outcomes, {"0": "0", "1": "1"}, "U")


def ood_codes(_group, outcomes: Sequence[Outcome]) -> str:
    return _letters(outcomes, {"correct": "C", "refusal": "R"}, "W")


def adv_codes(_group, outcomes: Sequence[Outcome]) -> str:
    return _letters(outcomes, {"match": "C", "refusal": "R"}, "W")
