"""`ks-publish`: staging a build as a Hub dataset repo, and publishing it through the real `huggingface_hub` client
to the test Hub of tests/hubserver.py (the real Hub cannot be reached from here)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import datasets
import huggingface_hub.constants
import pyarrow.parquet as pq
import pytest
import yaml
from hubserver import FakeHub

from knowledgesmith.builder import publish_stage
from knowledgesmith.builder.cli import main as ks_build_main
from knowledgesmith.builder.publish import main as ks_publish_main
from knowledgesmith.builder.publish_stage import lm_eval_prompts

# The client's own LFS upload passes a file object as `data=`, which its HTTP library deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

MINI_KG = Path(__file__).parent / "data" / "mini_kg.ttl"
TOKEN = "hf_test_write_token"
REPO = "knowledgesmith/mini"


def _build(out: Path, seed: int = 0) -> Path:
    assert ks_build_main(["--kg", str(MINI_KG), "--out", str(out), "--max-k", "100", "--seed", str(seed),
                          "--quiet", "--workers", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def mini_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("build") / "mini")


@pytest.fixture(scope="module")
def mini_build_seed1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("build") / "mini1", seed=1)


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The client's configuration for the test Hub: our token, no stored login, its LFS upload path (the test Hub
    does not speak Xet), and online even if the suite runs with HF_HUB_OFFLINE set."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub(hub_env: None):
    server = FakeHub()
    server.start()
    yield server
    server.stop()


def publish(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = ks_publish_main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stage_only(capsys: pytest.CaptureFixture[str], build: Path, stage: Path, *extra: str) -> None:
    code, _, err = publish(capsys, build, "--repo-id", REPO, "--stage", stage, "--dry-run", "--quiet",
                           "--endpoint", "http://127.0.0.1:9", *extra)  # nothing listens on port 9: plans offline
    assert code == 0, err


def staged_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def num(n: int) -> str:
    """A count as the card writes it (thousands separated by a space)."""
    return f"{n:,}".replace(",", " ")


def levels_rows(build: Path) -> dict[str, int]:
    """MCQ rows per level with any, from the build's manifest."""
    per = json.loads((build / "manifest.json").read_text())["benchmark"]["mcq_per_level_and_probe_type"]
    return {level: sum(counts.values()) for level, counts in per.items() if sum(counts.values())}


def front_matter(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


# ------------------------------------------------------------------------------------------------------- staging


def test_staged_folder_loads_offline_in_every_config_with_the_builds_rows_and_features(
        mini_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    stage = tmp_path / "stage"
    stage_only(capsys, mini_build, stage)
    manifest = json.loads((mini_build / "manifest.json").read_text())
    cache = str(tmp_path / "cache")

    default = datasets.load_dataset(str(stage), cache_dir=cache)  # the default config, without a name
    per_level = {lvl: sum(c.values()) for lvl, c in manifest["benchmark"]["mcq_per_level_and_probe_type"].items()}
    assert {split: ds.num_rows for split, ds in default.items()} == {k: v for k, v in per_level.items() if v}
    build_leaf = pq.read_table(mini_build / "mcq" / "leaf-00000-of-00001.parquet")
    assert default["leaf"].features == datasets.Features.from_arrow_schema(build_leaf.schema)
    assert default["leaf"].data.table.select(build_leaf.column_names).equals(build_leaf)

    for config, source in [("requests", "requests"), ("triples", "triples"), ("nodes", "nodes"),
                           ("relations", "relations")]:
        loaded = datasets.load_dataset(str(stage), config, cache_dir=cache)
        assert sum(ds.num_rows for ds in loaded.values()) == manifest["files"][f"{source}.parquet"]["rows"]
        schema = pq.read_schema(mini_build / f"{source}.parquet")
        assert next(iter(loaded.values())).features == datasets.Features.from_arrow_schema(schema)
    requests = datasets.load_dataset(str(stage), "requests", cache_dir=cache)
    assert set(requests) == {"intermediate", "leaf"}
    assert set(requests["leaf"]["level"]) == {"leaf"}


def test_restaging_the_same_build_gives_byte_identical_files(mini_build: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    stage_only(capsys, mini_build, tmp_path / "a")
    stage_only(capsys, mini_build, tmp_path / "b")
    stage_only(capsys, mini_build, tmp_path / "a")  # over an earlier stage: replaced, same bytes
    assert staged_files(tmp_path / "a") == staged_files(tmp_path / "b")


def test_card_front_matter_declares_configs_splits_and_sequence_features(mini_build: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    stage_only(capsys, mini_build, tmp_path / "s")
    meta = front_matter(tmp_path / "s")
    assert [c["config_name"] for c in meta["configs"]] == ["mcq", "requests", "triples", "nodes", "relations"]
    assert meta["configs"][0]["default"] is True
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["intermediate", "leaf"]
    assert meta["task_categories"] == ["multiple-choice", "question-answering"]
    assert meta["task_ids"] == ["multiple-choice-qa"]
    rows = levels_rows(mini_build)
    assert meta["size_categories"] == ["1K<n<10K" if sum(rows.values()) >= 1000 else "n<1K"]
    assert meta["license"] == "unknown" and meta["pretty_name"] == "KnowledgeSmith mini"
    mcq = meta["dataset_info"][0]
    assert {"name": "choices", "sequence": "string"} in mcq["features"]
    assert "list:" not in (tmp_path / "s" / "README.md").read_text().split("---\n")[1]
    assert [(s["name"], s["num_examples"]) for s in mcq["splits"]] == list(rows.items())


def test_card_shows_a_real_row_per_probe_type_the_counts_and_the_verifier_result(
        mini_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stage_only(capsys, mini_build, tmp_path / "s")
    card = (tmp_path / "s" / "README.md").read_text()
    rows = pq.read_table(mini_build / "mcq" / "leaf-00000-of-00001.parquet").to_pylist()
    for probe_type in ("direct", "reverse", "multi_hop", "comparison", "conflict", "contextual"):
        assert f"**`{probe_type}` (Q" in card
    shown = [row for row in rows if f"`{row['id']}`" in card]
    assert shown and all(row["question"].split("\n")[-1] in card for row in shown)
    manifest = json.loads((mini_build / "manifest.json").read_text())
    benchmark = manifest["benchmark"]
    assert f"**{num(benchmark['mcq_rows'])} rows checked, 0 failures**" in card.replace("\n  ", " ")
    leaf = benchmark["mcq_per_level_and_probe_type"]["leaf"]
    assert "| leaf | " + " | ".join(num(n) for n in leaf.values()) + f" | {num(sum(leaf.values()))} |" in card
    assert ", ".join(f"{letter} {num(n)}" for letter, n in benchmark["letters"].items()) in card
    assert 'load_dataset("knowledgesmith/mini")' in card and "--include_path" in card
    assert "| `mini_kg.ttl` | 72 |" in card and "@misc{knowledgesmith_mini" in card


def test_shards_are_cut_for_the_viewer_and_still_load_whole(mini_build: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publish_stage, "SHARD_ROWS", 300)
    monkeypatch.setattr(publish_stage, "ROW_GROUP_ROWS", 100)
    stage_only(capsys, mini_build, tmp_path / "s")
    shards = sorted(p.name for p in (tmp_path / "s" / "data" / "mcq").iterdir())
    count = -(-levels_rows(mini_build)["leaf"] // 300)
    assert count > 1
    assert shards == ["intermediate-00000-of-00001.parquet"] + [f"leaf-{i:05d}-of-{count:05d}.parquet"
                                                                for i in range(count)]
    for shard in shards:
        meta = pq.ParquetFile(tmp_path / "s" / "data" / "mcq" / shard).metadata
        assert all(meta.row_group(i).num_rows <= 100 for i in range(meta.num_row_groups))
        assert meta.row_group(0).column(0).compression == "ZSTD"
    leaf = datasets.load_dataset(str(tmp_path / "s"), "mcq", split="leaf", cache_dir=str(tmp_path / "cache"))
    build_ids = pq.read_table(mini_build / "mcq" / "leaf-00000-of-00001.parquet", columns=["id"])["id"].to_pylist()
    assert leaf["id"] == build_ids


def test_lm_eval_tasks_render_exactly_the_prompts_of_prompts_yaml(mini_build: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import jinja2

    stage_only(capsys, mini_build, tmp_path / "s")
    formats = yaml.safe_load(Path(publish_stage.__file__).parent.parent.joinpath(
        "eval_harness", "prompts.yaml").read_text())
    row = pq.read_table(mini_build / "mcq" / "leaf-00000-of-00001.parquet").slice(0, 1).to_pylist()[0]
    letters = dict(zip(("choice_a", "choice_b", "choice_c", "choice_d"), row["choices"], strict=True))
    tasks = {p.name: yaml.safe_load(p.read_text()) for p in (tmp_path / "s" / "lm_eval").glob("*.yaml")}
    assert set(tasks) == {f"{n}.yaml" for n in ["_ks_mini_letter", "_ks_mini_cloze", "ks_mini_intermediate_letter",
                                                "ks_mini_leaf_letter", "ks_mini_intermediate_cloze",
                                                "ks_mini_leaf_cloze"]}
    letter, cloze = tasks["ks_mini_leaf_letter.yaml"], tasks["ks_mini_leaf_cloze.yaml"]
    assert (letter["dataset_path"], letter["dataset_name"], letter["test_split"]) == (REPO, "mcq", "leaf")
    render = jinja2.Template
    assert render(letter["doc_to_text"]).render(**row) == formats["letter"]["context"].format(
        question=row["question"], **letters)
    assert [letter["target_delimiter"] + c for c in letter["doc_to_choice"]] == formats["letter"]["continuations"]
    assert render(cloze["doc_to_text"]).render(**row) == formats["cloze"]["context"].format(question=row["question"])
    assert cloze["doc_to_choice"] == "choices" and cloze["target_delimiter"] + "{choice}" == \
        formats["cloze"]["continuation"]
    assert lm_eval_prompts()["letter"]["doc_to_choice"] == ["A", "B", "C", "D"]
    assert tasks["_ks_mini_cloze.yaml"]["task"] == ["ks_mini_intermediate_cloze", "ks_mini_leaf_cloze"]


@pytest.mark.parametrize("damage, message", [
    ("unverified", "fails verification"),
    ("missing", "missing"),
    ("tampered", "sha256 differs"),
    ("no_manifest", "no manifest.json"),
])
def test_a_build_that_is_unverified_incomplete_or_changed_is_refused_in_one_line(
        mini_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, message: str) -> None:
    build = tmp_path / "build"
    shutil.copytree(mini_build, build)
    manifest = json.loads((build / "manifest.json").read_text())
    if damage == "unverified":
        manifest["verify"].update(ok=False, failures=3)
        (build / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "missing":
        (build / "mcq" / "leaf-00000-of-00001.parquet").unlink()
    elif damage == "tampered":
        table = pq.read_table(build / "nodes.parquet")
        pq.write_table(table.slice(1), build / "nodes.parquet")
    else:
        (build / "manifest.json").unlink()
    code, out, err = publish(capsys, build, "--repo-id", REPO, "--stage", tmp_path / "s", "--dry-run", "--quiet")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, message", [
    (["--repo-id", "not a repo"], "--repo-id must look like ORG/NAME"),
    (["--repo-id", "org/../x"], "--repo-id must look like ORG/NAME"),
    (["--repo-id", REPO, "--stage", "HOME"], "not an earlier ks-publish stage"),
])
def test_usage_errors_exit_2_with_one_line(mini_build: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          args: list[str], message: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "precious.txt").write_text("keep me")
    args = [str(home) if a == "HOME" else a for a in args]
    code, _, err = publish(capsys, mini_build, *args, "--dry-run")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert (home / "precious.txt").read_text() == "keep me"


def test_no_folder_and_no_domain_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = publish(capsys, "--repo-id", REPO, "--dry-run")
    assert code == 2 and "--domain NAME" in err


# ---------------------------------------------------------------------------------------------- through the test Hub


def test_first_publish_creates_the_repo_with_every_staged_file_and_a_version_tag(
        mini_build: Path, tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    stage = tmp_path / "stage"
    code, out, err = publish(capsys, mini_build, "--repo-id", REPO, "--stage", stage, "--endpoint", hub.url,
                             "--quiet")
    assert code == 0, err
    remote = hub.files(REPO)
    assert {p: b for p, b in remote.items() if p != ".gitattributes"} == staged_files(stage)
    assert hub.lfs_paths(REPO) == {p for p in remote if p.endswith(".parquet")}  # parquet goes through LFS
    commits = hub.commits(REPO)
    assert len(commits) == 2 and commits[1].message == "initial commit"
    assert hub.repos[REPO].tags == {"v0.1.0": commits[0].sha}
    assert hub.count("PUT", r"^/objects/") == 7
    assert TOKEN not in out + err and commits[0].sha in out


def test_a_second_identical_publish_makes_no_commit_and_uploads_nothing(
        mini_build: Path, tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    args = (mini_build, "--repo-id", REPO, "--stage", tmp_path / "stage", "--endpoint", hub.url, "--quiet")
    assert publish(capsys, *args)[0] == 0
    head, requests = hub.head(REPO), len(hub.log)
    code, _, err = publish(capsys, *args)
    assert code == 0 and "nothing changed: no commit" in err
    assert hub.head(REPO) == head
    sent = [(method, path) for method, path, _ in hub.log[requests:] if method in ("POST", "PUT")]
    assert sent == [("POST", "/api/repos/create")]  # answered 409: it exists; no upload, commit or tag


def test_a_changed_build_replaces_its_shards_and_deletes_stale_ones_in_one_commit(
        mini_build: Path, mini_build_seed1: Path, tmp_path: Path, hub: FakeHub,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "a", "--endpoint", hub.url,
                   "--quiet")[0] == 0
    hub.push_foreign_commit(hub.repos[REPO], "notes/by-hand.md", b"added by the owner\n")
    before = len(hub.commits(REPO))
    monkeypatch.setattr(publish_stage, "SHARD_ROWS", 500)  # the leaf split now needs two shards
    code, out, err = publish(capsys, mini_build_seed1, "--repo-id", REPO, "--stage", tmp_path / "b",
                             "--endpoint", hub.url, "--quiet")
    assert code == 0, err
    assert len(hub.commits(REPO)) == before + 1
    remote = hub.files(REPO)
    count = -(-levels_rows(mini_build_seed1)["leaf"] // 500)
    assert count > 1 and "data/mcq/leaf-00000-of-00001.parquet" not in remote
    assert {f"data/mcq/leaf-{i:05d}-of-{count:05d}.parquet" for i in range(count)} <= set(remote)
    assert {p: b for p, b in remote.items() if p.startswith(("data/", "lm_eval/", "README"))} == \
        staged_files(tmp_path / "b")
    assert remote["notes/by-hand.md"] == b"added by the owner\n" and ".gitattributes" in remote
    assert "warning: tag v0.1.0 already names commit" in err  # a published tag is never moved


def test_a_commit_racing_another_one_is_planned_again_from_the_new_head(
        mini_build: Path, tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.create_repo(REPO)
    hub.before_commit = lambda repo: hub.push_foreign_commit(repo, "CONTRIBUTING.md", b"someone else\n")
    code, _, err = publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "s", "--endpoint", hub.url,
                           "--quiet")
    assert code == 0, err
    assert "412" in err
    assert [s for m, p, s in hub.log if "/commit/" in p] == [412, 200]
    messages = [c.message for c in hub.commits(REPO)]
    assert messages[1:] == ["foreign commit: CONTRIBUTING.md", "initial commit"]
    assert "CONTRIBUTING.md" in hub.files(REPO)


def test_a_commit_whose_answer_is_lost_is_not_resent_when_the_hub_shows_it_landed(
        mini_build: Path, tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    hub.drop_commit_response = True
    code, out, err = publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "s", "--endpoint", hub.url,
                             "--quiet")
    assert code == 0, err
    assert "the commit did land" in err
    assert [s for m, p, s in hub.log if "/commit/" in p] == [0]  # sent once, never again
    assert len(hub.commits(REPO)) == 2 and hub.repos[REPO].tags == {"v0.1.0": hub.head(REPO)}


def test_a_bad_token_gets_a_clear_error_and_changes_nothing(
        mini_build: Path, tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_123")
    code, out, err = publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "s", "--endpoint", hub.url,
                             "--quiet")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("ks-publish: error:") and "refused the token (401" in last and "HF_TOKEN" in last
    assert "hf_wrong_token_123" not in out + err and "Traceback" not in err
    assert hub.repos == {}


def test_the_dry_run_prints_the_plan_and_sends_nothing(
        mini_build: Path, mini_build_seed1: Path, tmp_path: Path, hub: FakeHub,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "a", "--endpoint", hub.url,
                   "--quiet")[0] == 0
    mark = len(hub.log)
    code, out, _ = publish(capsys, mini_build_seed1, "--repo-id", REPO, "--stage", tmp_path / "b", "--endpoint",
                           hub.url, "--dry-run", "--quiet")
    assert code == 0
    assert "  ~ data/mcq/leaf-00000-of-00001.parquet" in out and "dry run: nothing sent" in out
    assert "  = lm_eval/ks_mini_leaf_letter.yaml" in out
    assert all(method == "GET" for method, _, _ in hub.log[mark:])


def test_private_flag_creates_a_private_repo(mini_build: Path, tmp_path: Path, hub: FakeHub,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "s", "--endpoint", hub.url,
                   "--private", "--no-tag", "--quiet")[0] == 0
    assert hub.repos[REPO].private and hub.repos[REPO].tags == {}


def test_a_publish_killed_mid_upload_leaves_the_repo_at_its_previous_commit(
        mini_build: Path, mini_build_seed1: Path, tmp_path: Path, hub: FakeHub,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "a", "--endpoint", hub.url,
                   "--quiet")[0] == 0
    head = hub.head(REPO)
    hub.put_delay = 30.0
    hub.put_started.clear()
    env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0",
           "HF_HOME": str(tmp_path / "hf-home")}
    process = subprocess.Popen([sys.executable, "-m", "knowledgesmith.builder.publish", str(mini_build_seed1),
                                "--repo-id", REPO, "--stage", str(tmp_path / "b"), "--endpoint", hub.url, "--quiet"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert hub.put_started.wait(120), "the upload never started"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    assert hub.head(REPO) == head
    assert hub.count("POST", r"/commit/") == 1  # the first publish's commit only

    hub.put_delay = 0.0  # the next run finishes the job from the Hub's state
    code, _, err = publish(capsys, mini_build_seed1, "--repo-id", REPO, "--stage", tmp_path / "b", "--endpoint",
                           hub.url, "--quiet")
    assert code == 0, err
    assert hub.commits(REPO)[1].sha == head
    assert {p: b for p, b in hub.files(REPO).items() if p != ".gitattributes"} == staged_files(tmp_path / "b")


def test_the_published_repo_loads_by_its_repo_id_through_the_hub_client(
        mini_build: Path, tmp_path: Path, hub: FakeHub, capsys: pytest.CaptureFixture[str]) -> None:
    assert publish(capsys, mini_build, "--repo-id", REPO, "--stage", tmp_path / "s", "--endpoint", hub.url,
                   "--quiet")[0] == 0
    # A fresh process, as a user's would be: `datasets` reads HF_ENDPOINT when it is imported.
    cache = str(tmp_path / "cache")
    script = ("import datasets, json\n"
              f"mcq = datasets.load_dataset({REPO!r}, cache_dir={cache!r})\n"
              f"nodes = datasets.load_dataset({REPO!r}, 'nodes', split='train', cache_dir={cache!r})\n"
              "print(json.dumps({**{k: v.num_rows for k, v in mcq.items()}, 'nodes': nodes.num_rows}))\n")
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf-home"),
           "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((mini_build / "manifest.json").read_text())
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {**levels_rows(mini_build),
                                                                  "nodes": manifest["counts"]["nodes"]}
    assert hub.count("GET", r"/resolve/[0-9a-f]{40}/data/mcq/leaf-00000-of-00001\.parquet$") == 1
