"""lm-evaluation-harness runs the task YAMLs that ks-publish stages, on a tiny model: against the staged folder offline
(a two-line YAML that includes a shipped one points it there), and unchanged against the repo published to the test
Hub of tests/hubserver.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hubserver import FakeHub

from knowledgesmith.builder.cli import main as ks_build_main
from knowledgesmith.builder.publish import main as ks_publish_main

# The Hub client's own LFS upload passes a file object as `data=`, which its HTTP library deprecates: not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

MINI_KG = Path(__file__).parent / "data" / "mini_kg.ttl"


def hub_token(hub: FakeHub) -> str:
    return next(iter(hub.tokens))


def test_lm_eval_runs_the_staged_letter_and_cloze_tasks_on_a_tiny_model_offline(
        tiny_lm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    import lm_eval
    from lm_eval.tasks import TaskManager

    build, stage = tmp_path / "build", tmp_path / "stage"
    assert ks_build_main(["--kg", str(MINI_KG), "--out", str(build), "--max-k", "100", "--quiet"]) == 0
    assert ks_publish_main([str(build), "--repo-id", "knowledgesmith/mini", "--stage", str(stage), "--dry-run",
                            "--quiet", "--endpoint", "http://127.0.0.1:9"]) == 0  # no Hub there: plans offline
    capsys.readouterr()

    # The shipped YAMLs name the Hub repo; before it is pushed (and here, offline), a two-line YAML that includes a
    # shipped one points it at the staged folder — everything else (prompts, choices, metrics) is the shipped file.
    local = tmp_path / "local"
    local.mkdir()
    for variant in ("letter", "cloze"):
        (local / f"local_{variant}.yaml").write_text(
            f"include: {stage / 'lm_eval' / f'ks_mini_intermediate_{variant}.yaml'}\n"
            f"task: local_mini_intermediate_{variant}\ndataset_path: {stage}\n")
    # include_defaults=False: indexing lm-eval's thousands of built-in tasks would take most of the test's time.
    manager = TaskManager(include_path=[str(stage / "lm_eval"), str(local)], include_defaults=False)
    assert {"ks_mini_letter", "ks_mini_cloze", "ks_mini_leaf_letter", "ks_mini_intermediate_cloze"} <= \
        set(manager.all_tasks)

    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_lm_dir},dtype=float32", device="cpu", batch_size=16,
        tasks=["local_mini_intermediate_letter", "local_mini_intermediate_cloze"], task_manager=manager, limit=24,
    )
    letter = results["results"]["local_mini_intermediate_letter"]
    cloze = results["results"]["local_mini_intermediate_cloze"]
    assert 0.0 <= letter["acc,none"] <= 1.0
    assert 0.0 <= cloze["acc,none"] <= 1.0 and 0.0 <= cloze["acc_norm,none"] <= 1.0
    config = results["configs"]["local_mini_intermediate_letter"]
    assert config["dataset_path"] == str(stage) and config["test_split"] == "intermediate"
    # lm-eval scored exactly the strings of prompts.yaml, as the harness does, so the two agree.
    formats = yaml.safe_load(resources.files("knowledgesmith.eval_harness").joinpath("prompts.yaml").read_text())
    for variant in ("letter", "cloze"):
        for sample in results["samples"][f"local_mini_intermediate_{variant}"]:
            doc = sample["doc"]
            choices = dict(zip(("choice_a", "choice_b", "choice_c", "choice_d"), doc["choices"], strict=True))
            context = formats[variant]["context"].format(question=doc["question"], **choices)
            continuations = formats["letter"]["continuations"] if variant == "letter" else \
                [formats["cloze"]["continuation"].format(choice=c) for c in doc["choices"]]
            assert [tuple(a) for a in sample["arguments"]] == [(context, c) for c in continuations]


@pytest.mark.slow  # about 30 s: a fresh process imports torch, transformers and lm-eval
def test_lm_eval_runs_the_shipped_task_yamls_unchanged_against_the_published_repo(
        tiny_lm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole path a user takes: publish, then `--include_path lm_eval` with the YAMLs as staged (dataset_path is
    the repo id), the dataset fetched from the Hub — our test Hub on 127.0.0.1, in a fresh process so that
    `huggingface_hub` and `datasets` read HF_ENDPOINT as they would on a user's machine."""
    pytest.importorskip("lm_eval")
    import huggingface_hub.constants

    build, stage = tmp_path / "build", tmp_path / "stage"
    assert ks_build_main(["--kg", str(MINI_KG), "--out", str(build), "--max-k", "100", "--quiet"]) == 0
    hub = FakeHub()
    hub.start()
    try:
        monkeypatch.setenv("HF_TOKEN", hub_token(hub))
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)  # the test Hub speaks LFS only
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        assert ks_publish_main([str(build), "--repo-id", "knowledgesmith/mini", "--stage", str(stage),
                                "--endpoint", hub.url, "--quiet"]) == 0
        capsys.readouterr()
        script = (
            "import json, lm_eval\n"
            "from lm_eval.tasks import TaskManager\n"
            f"manager = TaskManager(include_path=[{str(stage / 'lm_eval')!r}], include_defaults=False)\n"
            f"out = lm_eval.simple_evaluate(model='hf', model_args='pretrained={tiny_lm_dir},dtype=float32', "
            "device='cpu', batch_size=16, tasks=['ks_mini_cloze'], task_manager=manager, limit=16)\n"
            "print(json.dumps({k: v.get('acc,none') for k, v in out['results'].items()}))\n")
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "0",
               "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    finally:
        hub.stop()
    assert result.returncode == 0, result.stderr[-3000:]
    accuracies = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(accuracies) == {"ks_mini_cloze", "ks_mini_intermediate_cloze", "ks_mini_leaf_cloze"}
    assert all(0.0 <= acc <= 1.0 for acc in accuracies.values())
    assert hub.count("GET", r"/resolve/[0-9a-f]{40}/data/mcq/leaf-00000-of-00001\.parquet$") == 1
