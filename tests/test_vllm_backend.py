"""The vllm backend, run against tests/vllm_standin.py (vLLM's documented offline API computed with transformers,
since vLLM needs a GPU): same predictions as the hf backend, edited weights reaching the engine both ways, and a clear
error when vLLM is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


from knowledgesmith.eval_harness.models import load_model  # noqa: E402
from knowledgesmith.eval_harness.scoring import SCORING_MODES, HfScorer, ScoringError, make_scorer  # noqa: E402
from knowledgesmith.eval_harness.vllm_backend import VllmScorer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import vllm_standin  # noqa: E402
from test_scoring import MIXED_CHOICES, MIXED_QUESTIONS, rotated_common_knowledge  # noqa: E402


@pytest.fixture
def standin_vllm(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Install the stand-in as the `vllm` module for one test."""
    monkeypatch.setitem(sys.modules, "vllm", vllm_standin)
    return vllm_standin


def edited(model):  # noqa: ANN001, ANN201
    """A visible edit: one MLP output matrix scaled, as an editing method would change a down_proj."""
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight.mul_(3.0)
    return model


def test_missing_vllm_is_a_scoring_error_naming_the_gpu_extra(tiny_lm_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ScoringError, match=r"knowledgesmith\[gpu\]"):
        VllmScorer(tiny_lm_dir)


def test_hf_and_vllm_backends_give_the_same_scores_and_predictions_on_tiny_llama(tiny_lm_dir: Path,
                                                                                standin_vllm) -> None:  # noqa: ANN001
    model, tokenizer = load_model(str(tiny_lm_dir))
    hf = HfScorer(model, tokenizer, progress=False).score(MIXED_QUESTIONS, MIXED_CHOICES, SCORING_MODES)
    vl = make_scorer("vllm", str(tiny_lm_dir)).score(MIXED_QUESTIONS, MIXED_CHOICES, SCORING_MODES)
    for mode in SCORING_MODES:
        np.testing.assert_allclose(vl[mode], hf[mode], atol=1e-4, err_msg=mode)
        np.testing.assert_array_equal(vl[mode].argmax(1), hf[mode].argmax(1))


@pytest.mark.slow
def test_hf_and_vllm_backends_give_the_same_predictions_on_smollm2(smollm2_dir: Path, standin_vllm) -> None:  # noqa: ANN001
    questions, choices, _ = rotated_common_knowledge()
    questions, choices = questions[:8], choices[:8]
    model, tokenizer = load_model(str(smollm2_dir))
    hf = HfScorer(model, tokenizer, progress=False).score(questions, choices, SCORING_MODES)
    vl = VllmScorer(smollm2_dir).score(questions, choices, SCORING_MODES)
    for mode in SCORING_MODES:
        np.testing.assert_array_equal(vl[mode].argmax(1), hf[mode].argmax(1), err_msg=mode)
        np.testing.assert_allclose(vl[mode], hf[mode], atol=5e-4, err_msg=mode)


def test_an_edited_hf_model_reaches_vllm_by_save_and_reload(tiny_lm_dir: Path, tmp_path: Path,
                                                            standin_vllm) -> None:  # noqa: ANN001
    model, tokenizer = load_model(str(tiny_lm_dir))
    model = edited(model)
    want = HfScorer(model, tokenizer, progress=False).score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"])["cloze"]
    scorer = make_scorer("vllm", model, tokenizer, workdir=tmp_path)
    assert Path(scorer.model_dir).parent == tmp_path
    np.testing.assert_allclose(scorer.score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"])["cloze"], want, atol=1e-4)


def test_an_in_place_weight_load_resets_the_prefix_cache(tiny_lm_dir: Path, standin_vllm) -> None:  # noqa: ANN001
    scorer = VllmScorer(tiny_lm_dir)
    base = scorer.score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"])["cloze"]
    model, tokenizer = load_model(str(tiny_lm_dir))
    model = edited(model)
    scorer.load_weights(model)
    assert scorer.llm.resets == 1  # without it the stand-in, like vLLM, would serve KV computed with the old weights
    after = scorer.score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"])["cloze"]
    want = HfScorer(model, tokenizer, progress=False).score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"])["cloze"]
    assert not np.allclose(after, base)
    np.testing.assert_allclose(after, want, atol=1e-4)


def test_vllm_backend_refuses_hidden_states(tiny_lm_dir: Path, standin_vllm) -> None:  # noqa: ANN001
    with pytest.raises(ScoringError, match="no hidden states"):
        VllmScorer(tiny_lm_dir).score(MIXED_QUESTIONS, MIXED_CHOICES, ["cloze"], hidden_states=True)


def test_make_scorer_takes_the_hf_options_for_vllm_too(tiny_lm_dir: Path, standin_vllm) -> None:  # noqa: ANN001
    model, tokenizer = load_model(str(tiny_lm_dir))
    scorer = make_scorer("vllm", model, tokenizer, batch_size=16, progress=False)  # as ks-eval calls it
    assert scorer.score(MIXED_QUESTIONS[:2], MIXED_CHOICES[:2], ["cloze"])["cloze"].shape == (2, 4)
