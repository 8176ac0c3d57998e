"""A small JSON-schema validator for the subset our answer schemas use (jsonschema is not a dependency of ours).

Supported keywords: type (a name or a list), properties, required, additionalProperties (boolean), items, enum,
minItems, maxItems, minLength. Anything else in a schema is ignored, so a schema may carry more for the endpoint's
structured outputs than we check here.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "integer": (int,), "number": (int, float),
}


def _is_type(value: Any, name: str) -> bool:
    # bool is an int in Python but not a JSON number
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES.get(name, (object,)))


def schema_errors(instance: Any, schema: dict[str, Any], path: str = "$", limit: int = 5) -> list[str]:
    """Return up to `limit` messages saying where `instance` breaks `schema`; an empty list means it is valid."""
    errors: list[str] = []
    _check(instance, schema, path, errors, limit)
    return errors[:limit]


def _check(value: Any, schema: dict[str, Any], path: str, errors: list[str], limit: int) -> None:
    if len(errors) >= limit:
        return
    wanted = schema.get("type")
    if wanted is not None:
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        if not any(_is_type(value, name) for name in names):
            errors.append(f"{path}: expected {' or '.join(names)}, got {type(value).__name__}")
            return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        errors.append(f"{path}: shorter than {schema['minLength']} characters")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing required property {key!r}")
        if schema.get("additionalProperties") is False:
            for key in value:
                if key not in properties:
                    errors.append(f"{path}: unexpected property {key!r}")
        for key, sub in properties.items():
            if key in value:
                _check(value[key], sub, f"{path}.{key}", errors, limit)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _check(item, items, f"{path}[{i}]", errors, limit)
