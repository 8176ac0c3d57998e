"""Resolve layers and modules per architecture from architectures.yaml (data, so a new family is one line)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from knowledgesmith.builder.errors import KsUserError


class ArchitectureError(KsUserError):
    """The model's family is not in architectures.yaml, or a path there does not exist on the model."""


@cache
def _table() -> dict[str, dict[str, Any]]:
    text = resources.files("knowledgesmith.eval_harness").joinpath("architectures.yaml").read_text()
    return yaml.safe_load(text)


def supported_families() -> list[str]:
    return sorted(_table())


def _walk(root: Any, path: str) -> Any:
    node = root
    for part in path.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)
    return node


@dataclass(frozen=True)
class Architecture:
    """Paths of one family; `layer(model, i)` and `mlp_out(model, i)` return the live modules."""

    family: str
    layers_path: str
    mlp_out_path: str
    embed_path: str
    final_norm_path: str
    conv1d: bool = False

    def layers(self, model: Any) -> Any:
        return _walk(model, self.layers_path)

    def num_layers(self, model: Any) -> int:
        return len(self.layers(model))

    def layer(self, model: Any, index: int) -> Any:
        count = self.num_layers(model)
        if not -count <= index < count:
            raise ArchitectureError(f"layer {index} does not exist: the model has {count} layers (0…{count - 1})")
        return self.layers(model)[index]

    def mlp_out(self, model: Any, index: int) -> Any:
        return _walk(self.layer(model, index), self.mlp_out_path)

    def mlp_out_name(self, index: int) -> str:
        """The parameter-name prefix of layer `index`'s MLP output projection, as in model.named_parameters()."""
        return f"{self.layers_path}.{index}.{self.mlp_out_path}"


def _from_module_pattern(model: Any, family: str, pattern: str) -> Architecture:
    """An architecture from a `--module` pattern such as "model.layers.{}.mlp.down_proj" ({} marks the layer)."""
    if pattern.count("{}") != 1 or not pattern.startswith(tuple("abcdefghijklmnopqrstuvwxyz_")) \
            or ".{}." not in pattern:
        raise ArchitectureError(f"--module {pattern!r}: expected a path with one {{}} for the layer index, "
                                "e.g. model.layers.{}.mlp.down_proj")
    layers_path, mlp_out_path = pattern.split(".{}.", 1)
    try:
        first = _walk(_walk(model, layers_path)[0], mlp_out_path)
    except (AttributeError, IndexError, TypeError) as err:
        raise ArchitectureError(f"--module {pattern!r}: not found on the model ({err})") from None
    conv1d = type(first).__name__ == "Conv1D"  # GPT-2-style layers store the weight transposed
    return Architecture(family or "custom", layers_path, mlp_out_path, "", "", conv1d)


def architecture_of(model: Any, module: str | None = None) -> Architecture:
    """The architecture of a loaded model: from architectures.yaml by `config.model_type`, or from `module` (a
    `--module` pattern), which also serves families the table does not know."""
    family = getattr(getattr(model, "config", None), "model_type", None)
    if module:
        return _from_module_pattern(model, family or "", module)
    entry = _table().get(family or "")
    if entry is None:
        raise ArchitectureError(f"model family {family!r} is not in architectures.yaml "
                                f"(known: {', '.join(supported_families())}): name the edited projection with "
                                "--module PATH (e.g. --module 'model.layers.{}.mlp.down_proj', {} = layer) and the "
                                "layers with --layers 4,5,6")
    arch = Architecture(family, entry["layers"], entry["mlp_out"], entry["embed"], entry["final_norm"],
                        bool(entry.get("conv1d", False)))
    try:
        _walk(model, arch.layers_path)
    except (AttributeError, IndexError) as err:
        raise ArchitectureError(f"{family}: {arch.layers_path} not found on the model ({err})") from None
    return arch
