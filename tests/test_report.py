"""Sweeps over several methods and `ks-report`: one run folder per method on the same requests, the base scored once,
drift and geometry written beside the scores, and a self-contained report.html whose every image loads and every table
has rows in a real browser (headless Chromium; skipped with the reason where it is absent)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from knowledgesmith.eval_harness.cli import main as ks_eval_main
from knowledgesmith.eval_harness.report import main as ks_report_main

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Appended to a copy of the page under test (never to the report itself): after load, count the images that did not
# decode and the tables without body rows, and leave the counts on <body> for --dump-dom to show.
CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const tables = Array.from(document.querySelectorAll('table'));
  const empty = tables.filter(t => t.querySelectorAll('tbody tr').length === 0).length;
  const counts = `images=${images.length} broken=${broken} tables=${tables.length} empty=${empty}`;
  document.body.setAttribute('data-check', counts);
});
</script>"""


def browser_check(page: Path, tmp_path: Path) -> dict[str, int]:
    """Open `page` in headless Chromium and return {images, broken, tables, empty}; skip without a browser."""
    binary = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    if binary is None:
        pytest.skip("headless Chromium not found (apt-get install -y chromium); the browser check of report.html "
                    "needs it")
    probe = tmp_path / "report-under-test.html"
    probe.write_text(page.read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    result = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                             "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    match = re.search(r'data-check="images=(\d+) broken=(\d+) tables=(\d+) empty=(\d+)"', result.stdout)
    assert match, f"the check script did not run in Chromium: {result.stderr[-500:]}"
    return dict(zip(("images", "broken", "tables", "empty"), map(int, match.groups()), strict=True))


def assert_self_contained(page: Path) -> None:
    text = page.read_text()
    for attribute in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert attribute.startswith(("data:", "#")), f"external reference in report.html: {attribute[:80]}"
    assert text.count("<img") >= 4


def run(capsys: pytest.CaptureFixture[str], entry, *args: str | Path) -> tuple[int, str, str]:  # noqa: ANN001
    code = entry([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def tiny_sweep(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FT-L and GA on the same 1 and 10 leaf requests of the mini build, cloze and open-ended, on the tiny Llama."""
    out = tmp_path_factory.mktemp("sweep") / "sweep"
    code = ks_eval_main([str(a) for a in (
        "--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf", "--k", "1,10", "--method", "ft,ga",
        "--set", "ft.num_steps=3", "--set", "ft.layer=1", "--set", "ft.lr=0.05", "--set", "ga.max_steps=2",
        "--set", "ga.lr=0.01", "--modes", "cloze,open", "--drift-probes", "64", "--out", out, "--quiet")])
    assert code == 0
    return out


def test_a_sweep_runs_every_method_on_the_same_requests_from_one_base(tiny_sweep: Path) -> None:
    sweep = json.loads((tiny_sweep / "sweep.json").read_text())
    assert sweep["methods"] == ["ft", "ga"]
    configs = {m: json.loads((tiny_sweep / m / "config.json").read_text()) for m in ("ft", "ga")}
    assert configs["ft"]["fingerprint"] == configs["ga"]["fingerprint"]
    assert configs["ft"]["drift_probe_ids"] == configs["ga"]["drift_probe_ids"]
    assert len(configs["ft"]["drift_probe_ids"]) == 64
    assert configs["ft"]["run"]["settings"] == {"num_steps": 3, "layer": 1, "lr": 0.05}
    assert configs["ga"]["run"]["settings"] == {"max_steps": 2, "lr": 0.01}
    # the base is scored once: the second method's base part is the first one's, byte for byte
    assert (tiny_sweep / "ga" / "parts" / "base.parquet").read_bytes() == \
        (tiny_sweep / "ft" / "parts" / "base.parquet").read_bytes()
    ids = [pl.read_parquet(tiny_sweep / m / "predictions.parquet").filter(pl.col("k") == 10)["id"].sort().to_list()
           for m in ("ft", "ga")]
    assert ids[0] == ids[1]
    # normalised over the whole sweep: the extreme points sit at 0 and 1
    cka = [v for by_k in sweep["drift_normalised"]["cka_drift"].values() for v in by_k.values()]
    assert min(cka) == 0.0 and max(cka) == 1.0


def test_drift_geometry_and_failure_modes_land_in_the_run_folder(tiny_sweep: Path) -> None:
    metrics = json.loads((tiny_sweep / "ft" / "metrics.json").read_text())
    drift = metrics["drift"]
    assert drift["probes"] == 64 and set(drift["kl"]) == {"cloze"}  # KL needs a distribution; open has none
    assert all(len(drift["cka"][k]) == 2 for k in ("1", "10"))  # the tiny Llama's two layers
    assert all(0.0 <= v <= 1.0 + 1e-9 for k in ("1", "10") for v in drift["cka"][k])
    assert drift["kl"]["cloze"]["10"] > 0
    # FT-L on layer 1 changes exactly one matrix: that layer's MLP output projection
    geometry = json.loads((tiny_sweep / "ft" / "geometry" / "k=10.json").read_text())
    assert [m["name"] for m in geometry["matrices"]] == ["model.layers.1.mlp.down_proj.weight"]
    assert metrics["geometry"]["10"]["layers_changed"] == [1]
    assert set(metrics["failure_modes"]["10"]["overall"]) >= {
        "under_forgetting_rr", "over_spreading_ccr", "conflict_emergence", "knowledge_drift", "hallucination_increase"}
    predictions = pl.read_parquet(tiny_sweep / "ga" / "predictions.parquet")
    open_rows = predictions.filter(pl.col("mode") == "open")
    assert open_rows["p1_text"].null_count() == 0 and open_rows["p1_hallucinated"].null_count() == 0
    assert predictions.filter(pl.col("mode") == "cloze")["p1_text"].null_count() == predictions.height // 2


def test_report_of_a_sweep_is_self_contained_and_loads_in_a_browser(tiny_sweep: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, ks_report_main, tiny_sweep)
    assert code == 0, err
    folder = tiny_sweep / "report"
    pngs = sorted(p.stem for p in folder.glob("*.png"))
    assert {"metrics_vs_k", "accuracy_by_level_probe_type", "consistency_direct_reverse", "drift_vs_k",
            "cka_by_layer", "sv_ratio_spectra", "rotation_angles", "failure_modes"} <= set(pngs)
    summary = (folder / "report.md").read_text()
    assert "| ft | edit | 10 |" in summary and "| ga | unlearn | 10 |" in summary
    page = folder / "report.html"
    assert_self_contained(page)
    assert page.read_text().count("<img") == len(pngs)
    check = browser_check(page, tmp_path)
    assert check["images"] == len(pngs) and check["broken"] == 0
    assert check["tables"] >= 4 and check["empty"] == 0


def test_several_runs_side_by_side(tiny_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, ks_report_main, tiny_sweep / "ft", tiny_sweep / "ga", "--out", tmp_path / "both")
    assert code == 0, err
    text = (tmp_path / "both" / "report.md").read_text()
    assert "ft (ft)" in text and "ga (ga)" in text


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes").mkdir()
    code, _, err = run(capsys, ks_report_main, tmp_path / "notes")
    assert code == 2 and "not a ks-eval run or sweep folder" in err and err.count("\n") == 1
    code, _, err = run(capsys, ks_report_main, tmp_path / "missing")
    assert code == 2 and "no such folder" in err


def test_a_setting_for_a_method_outside_the_sweep_is_refused(mini_build_dir: Path, tiny_lm_dir: Path,
                                                             tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, ks_eval_main, "--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf",
                       "--method", "ft,ga", "--set", "npo.beta=1", "--out", tmp_path / "r")
    assert code == 2 and "'npo' is not a method of this run" in err and err.count("\n") == 1


@pytest.mark.slow
def test_smollm2_sweep_of_an_editor_and_an_unlearner_produces_a_report(mini_build_dir: Path, smollm2_dir: Path,
                                                                       tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """End to end on a real model: MEMIT and GA on the same leaf request, then the report in a browser.

    k = 1 only and few steps (2 z steps, 2 GA steps on the MLP output projections), so that the test stays near 90 s
    on two CPU cores: a k = 10 point scores 172 more questions per method on SmolLM2 (about 45 s each). The sweep
    mechanics over several k are tested on the tiny Llama above; the figures are not the point here."""
    out = tmp_path / "sweep"
    code, _, err = run(capsys, ks_eval_main, "--model", smollm2_dir, "--data", mini_build_dir, "--level", "leaf",
                       "--k", "1", "--method", "memit,ga", "--set", "memit.v_num_grad_steps=2",
                       "--set", "memit.num_prefixes=1", "--set", "memit.layers=[4,5]",
                       "--set", "memit.corpus_samples=200", "--set", "ga.max_steps=2",
                       "--set", "ga.lora_targets=[down_proj]", "--modes", "cloze", "--drift-probes", "16",
                       "--geometry-rank", "8", "--batch-size", "32", "--out", out, "--quiet")
    assert code == 0, err
    memit = json.loads((out / "memit" / "metrics.json").read_text())
    assert memit["geometry"]["1"]["layers_changed"] == [4, 5]
    assert len(memit["drift"]["cka"]["1"]) == 30  # SmolLM2-135M has 30 layers
    ga = json.loads((out / "ga" / "metrics.json").read_text())
    assert ga["geometry"]["1"]["matrices_changed"] == 30  # one down_proj per layer, merged from LoRA
    code, _, err = run(capsys, ks_report_main, out)
    assert code == 0, err
    page = out / "report" / "report.html"
    assert_self_contained(page)
    check = browser_check(page, tmp_path)
    assert check["broken"] == 0 and check["images"] >= 6 and check["empty"] == 0


def test_drift_off_runs_a_trained_method(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code = ks_eval_main([str(a) for a in (
        "--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf", "--k", "1", "--method", "ga",
        "--set", "max_steps=1", "--modes", "cloze", "--drift-probes", "0", "--out", out, "--quiet")])
    assert code == 0
    drift = json.loads((out / "metrics.json").read_text()).get("drift") or {}
    assert not drift.get("kl") or all(not v for v in drift["kl"].values())
