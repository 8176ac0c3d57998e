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


def architecture_of(model: Any) -> Architecture:
    family = getattr(getattr(model, "config", None), "model_type", None)
    entry = _table().get(family or "")
    if entry is None:
        raise ArchitectureError(f"model family {family!r} is not supported by the editing methods yet "
                                f"(known: {', '.join(supported_families())}; add it to architectures.yaml)")
    arch = Architecture(family, entry["layers"], entry["mlp_out"], entry["embed"], entry["final_norm"],
                        bool(entry.get("conv1d", False)))
    try:
        _walk(model, arch.layers_path)
    except (AttributeError, IndexError) as err:
        raise ArchitectureError(f"{family}: {arch.layers_path} not found on the model ({err})") from None
    return arch
