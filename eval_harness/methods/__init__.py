"""Interventions behind one interface, and the registry `ks-eval --method NAME` looks names up in.

A method is a class with `name`, `kind` ("edit" or "unlearn") and
`apply(model, tokenizer, requests, probes, settings) -> model`; settings come from `hparams/<name>.yaml`
(defaults, then the model family's block, then the user's `--set key=value`).
"""

from __future__ import annotations

from .base import (
    METHODS,
    EditRequest,
    Intervention,
    MethodError,
    get_method,
    load_settings,
    register,
    requests_from_frame,
)

# Importing the modules registers their methods.
from . import alphaedit, ft, none  # noqa: E402, F401  isort: skip
from . import ga, lora, npo, relearn  # noqa: E402, F401  isort: skip

__all__ = ["METHODS", "EditRequest", "Intervention", "MethodError", "get_method", "load_settings", "register",
           "requests_from_frame"]
