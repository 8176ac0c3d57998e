"""The Intervention interface, the method registry and per-family settings loaded from data files."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

import polars as pl
import yaml

from knowledgesmith.builder.errors import KsUserError


class MethodError(KsUserError):
    """Unknown method or bad settings; the message is one line for the user."""


@dataclass(frozen=True)
class EditRequest:
    """One fact to change: (subject, relation, true object) → new object, or → neutral answer for unlearning."""

    request_id: str
    subject: str
    prompt: str  # the editor's fill-in sentence with "{}" where the subject goes
    target_true: str
    target_new: str
    neutral_answer: str
    relation_id: str = ""

    @property
    def prompt_text(self) -> str:
        """The prompt with the subject filled in (str.replace, so braces inside a label cannot break it)."""
        return self.prompt.replace("{}", self.subject, 1)


def requests_from_frame(frame: pl.DataFrame) -> list[EditRequest]:
    return [EditRequest(r["request_id"], r["subject"], r["prompt"], r["target_true"], r["target_new"],
                        r["neutral_answer"], r.get("relation_id") or "")
            for r in frame.iter_rows(named=True)]


class Intervention(ABC):
    """apply() changes the model (in place or not) and returns the updated model."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "edit": requests carry target_new; "unlearn": requests carry neutral_answer
    description: ClassVar[str] = ""

    @abstractmethod
    def apply(self, model: Any, tokenizer: Any, requests: list[EditRequest], probes: pl.DataFrame,
              settings: dict[str, Any]) -> Any: ...


METHODS: dict[str, type[Intervention]] = {}


def register(cls: type[Intervention]) -> type[Intervention]:
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> Intervention:
    cls = METHODS.get(name)
    if cls is None:
        raise MethodError(f"--method {name!r} is not known (available: {', '.join(sorted(METHODS))})")
    return cls()


def _hparams_file(method: str) -> dict[str, Any]:
    node = resources.files("knowledgesmith.eval_harness").joinpath("hparams", f"{method}.yaml")
    return yaml.safe_load(node.read_text()) if node.is_file() else {}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """['lr=1e-3', 'layer=4'] → {'lr': 0.001, 'layer': 4}; values are read as YAML scalars or lists."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MethodError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise MethodError(f"--set {pair!r}: the value is not a YAML scalar or list") from None
    return out


def load_settings(method: str, model_family: str | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """defaults, then families[model_family], then overrides; an override of an unknown key is an error."""
    data = _hparams_file(method)
    settings = dict(data.get("defaults") or {})
    settings.update((data.get("families") or {}).get(model_family or "", {}) or {})
    for key, value in (overrides or {}).items():
        if key not in settings:
            known = ", ".join(sorted(settings)) or "none"
            raise MethodError(f"--set {key}: not a setting of {method} (settings: {known})")
        settings[key] = value
    return settings
