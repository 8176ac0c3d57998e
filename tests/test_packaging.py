"""The distribution: a wheel built from the repository works in a fresh virtual environment, data files included."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh_venv_with_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding only our wheel; the dependencies come from this environment's site-packages through a
    .pth path entry (so no download), while the editable install of this checkout stays invisible to it."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(root / "dist"), str(REPO)], check=True, capture_output=True)
    wheels = list((root / "dist").glob("knowledgesmith-*.whl"))
    assert len(wheels) == 1
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "ks_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    str(wheels[0])], check=True, capture_output=True)
    return env_dir


def test_wheel_installs_ks_build_whose_help_runs(fresh_venv_with_wheel: Path, tmp_path: Path) -> None:
    result = subprocess.run([str(fresh_venv_with_wheel / "bin" / "ks-build"), "--help"], capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--kg FILE" in result.stdout and "--out DIR" in result.stdout


def test_wheel_ships_its_packages_and_data_and_imports_from_site_packages(fresh_venv_with_wheel: Path,
                                                                         tmp_path: Path) -> None:
    probe = (
        "import importlib.resources as r, knowledgesmith.builder as b, knowledgesmith.eval_harness;"
        "print(b.__file__);"
        "print(sorted(p.name for p in r.files('knowledgesmith.kg').iterdir() if p.name.endswith('.ttl')));"
        "print(r.files('knowledgesmith.templates').joinpath('README.md').is_file());"
        "print(r.files('knowledgesmith.dataset_cards').joinpath('README.md').is_file())"
    )
    result = subprocess.run([str(fresh_venv_with_wheel / "bin" / "python"), "-c", probe], capture_output=True,
                            text=True, cwd=tmp_path, check=True)
    module_file, kg_files, templates_readme, cards_readme = result.stdout.strip().splitlines()
    assert str(fresh_venv_with_wheel) in module_file and str(REPO) not in module_file
    assert "sample.ttl" in kg_files
    assert templates_readme == "True" and cards_readme == "True"


def test_wheel_builds_the_shipped_sample_kg_by_default(fresh_venv_with_wheel: Path, tmp_path: Path) -> None:
    result = subprocess.run([str(fresh_venv_with_wheel / "bin" / "ks-build"), "--out", "built", "--quiet"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    nodes = pq.read_table(tmp_path / "built" / "nodes.parquet")
    assert nodes.num_rows > 100
    assert set(nodes["level"].to_pylist()) == {"root", "intermediate", "leaf"}
