"""Loading models by spec (folder, .gguf file, `smollm2`, Hub id) and the errors a bad spec gives."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from knowledgesmith.builder.errors import KsUserError  # noqa: E402
from knowledgesmith.eval_harness import models  # noqa: E402
from knowledgesmith.eval_harness.models import (  # noqa: E402
    ModelLoadError,
    WeightSnapshot,
    fresh_copy,
    load_model,
    smollm2_folder,
)


def test_a_local_folder_loads_in_eval_mode_as_float32_on_cpu(tiny_lm_dir: Path) -> None:
    model, tokenizer = load_model(str(tiny_lm_dir))
    assert not model.training
    assert model.dtype == torch.float32
    assert model.device.type == "cpu"
    assert tokenizer.encode(" A", add_special_tokens=False) == [tokenizer.convert_tokens_to_ids("ĠA")]


def test_dtype_flag_is_honoured(tiny_lm_dir: Path) -> None:
    model, _ = load_model(str(tiny_lm_dir), dtype="bfloat16")
    assert model.dtype == torch.bfloat16


def test_smollm2_spec_is_the_cached_copy_of_the_packaged_gguf(smollm2_dir: Path) -> None:
    assert smollm2_folder() == smollm2_dir
    assert (smollm2_dir / "model.safetensors").is_file()
    model, tokenizer = load_model("smollm2")
    assert model.config.model_type == "llama"
    assert model.config.num_hidden_layers == 30
    assert tokenizer("Paris")["input_ids"]


@pytest.mark.parametrize(("spec", "message"), [
    ("/nonexistent/model-folder", "model folder not found"),
    ("./typo-in-a-relative-path", "model folder not found"),
    ("/nonexistent/model.Q4_0.gguf", "model file not found"),
])
def test_a_missing_path_is_one_clear_model_load_error(spec: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message) as info:
        load_model(spec)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, KsUserError)  # the CLI turns it into exit 2


def test_a_folder_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))


def test_an_unknown_hub_id_offline_is_one_clear_model_load_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    # The constant is read from the environment at import; set both so no request is even attempted.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="cannot load model 'no-such-org/no-such-model'") as info:
        load_model("no-such-org/no-such-model")
    assert "\n" not in str(info.value)


def test_a_model_larger_than_free_memory_is_refused_before_loading(tiny_lm_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_available_bytes", lambda device: 100_000)  # the tiny model needs ~0.5 MB
    with pytest.raises(ModelLoadError, match=r"needs about .* GiB .* but only .* is free on cpu"):
        load_model(str(tiny_lm_dir))


def test_unknown_dtype_and_device_are_model_load_errors(tiny_lm_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_model(str(tiny_lm_dir), dtype="float8")
    with pytest.raises(ModelLoadError, match="unknown device"):
        load_model(str(tiny_lm_dir), device="tpu")


def test_weight_snapshot_restores_the_base_weights_in_place(tiny_lm_dir: Path) -> None:
    model, _ = load_model(str(tiny_lm_dir))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snapshot = WeightSnapshot(model)
    weight = model.model.layers[0].mlp.down_proj.weight
    with torch.no_grad():
        weight.add_(1.0)
    snapshot.restore(model)
    assert model.model.layers[0].mlp.down_proj.weight is weight  # the same tensor, restored in place
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name


def test_fresh_copy_is_independent_of_the_original(tiny_lm_dir: Path) -> None:
    model, _ = load_model(str(tiny_lm_dir))
    copy = fresh_copy(model)
    with torch.no_grad():
        copy.model.layers[0].mlp.down_proj.weight.add_(1.0)
    assert not torch.equal(copy.model.layers[0].mlp.down_proj.weight, model.model.layers[0].mlp.down_proj.weight)
