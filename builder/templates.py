"""Probe templates and relation phrasings, loaded from data files and rendered in a Jinja sandbox.

The shipped files live in the `knowledgesmith.templates` package (`relations.yaml`, `generic.yaml`, one
`<probe_type>.jinja` per probe type); `--templates DIR` adds relation entries and replaces probe templates. Rendering
uses `SandboxedEnvironment` with `StrictUndefined`: a user template cannot reach Python internals, and a missing
variable is an error naming the template and its line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment

from .errors import KsUserError

PROBE_TYPES = ("direct", "reverse", "multi_hop", "comparison", "conflict", "contextual")
PROBE_COUNT_KEYS = ("direct", "reverse", "multi_hop", "comparison", "conflict_minus", "contextual")
PHRASING_KINDS = ("question", "reverse", "statement", "noun_phrase", "same", "prompt", "neutral")
_VERB_STARTS = ("has ", "have ", "is ", "was ", "were ", "are ", "does ", "did ", "can ", "contains", "includes")
_VERB_ENDS = (" in", " to", " by", " at", " from", " with", " on", " for", " into", " as")


@dataclass(frozen=True)
class Phrasing:
    """One rendered-ready phrasing: its id (file/key/kind/index) and its compiled template."""

    template_id: str
    template: SandboxedTemplate
    cache: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, hash=False)

    def render(self, where: str = "", **variables: Any) -> str:
        return _render(self.template, self.template_id, variables, where)

    def render_cached(self, subject: str, obj: str, where: str = "") -> str:
        """`render(subject=…, object=…)`, memoised: the same fact is phrased for many probes."""
        key = (subject, obj)
        text = self.cache.get(key)
        if text is None:
            text = self.cache[key] = _render(self.template, self.template_id, {"subject": subject, "object": obj},
                                             where)
        return text


class _NoAttributeSandbox(SandboxedEnvironment):
    """Templates see strings only: no attribute access at all (a method's repr would put a memory address, and so a
    non-deterministic value, into a question)."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False


class TemplateLibrary:
    def __init__(self, extra_dir: Path | None = None) -> None:
        self.env = _NoAttributeSandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        self.files: list[Path] = []  # every file read, for the manifest's template hash
        shipped = Path(str(resources.files("knowledgesmith.templates")))
        self.relations: dict[str, dict[str, Any]] = {}
        self.sources: dict[str, str] = {}
        self._load_relations(shipped / "relations.yaml")
        self.generic = self._read_yaml(shipped / "generic.yaml")
        self.probe_counts = self._read_counts(shipped / "probes.yaml")
        self.probe_templates: dict[str, SandboxedTemplate] = {}
        self.probe_files: dict[str, Path] = {}
        self.probe_names: dict[str, str] = {}
        for probe_type in PROBE_TYPES:
            self._load_probe_template(shipped / f"{probe_type}.jinja", probe_type)
        if extra_dir is not None:
            if not extra_dir.is_dir():
                raise KsUserError("--templates must be a folder of .jinja and .yaml files", path=str(extra_dir))
            for path in sorted(extra_dir.glob("*.yaml")):
                if path.name == "generic.yaml":
                    self.generic = self._read_yaml(path)
                elif path.name == "probes.yaml":
                    self.probe_counts = {**self.probe_counts, **self._read_counts(path)}
                else:
                    self._load_relations(path)
            for probe_type in PROBE_TYPES:
                if (extra_dir / f"{probe_type}.jinja").is_file():
                    self._load_probe_template(extra_dir / f"{probe_type}.jinja", probe_type)
        self._cache: dict[tuple[str, str, str], list[Phrasing]] = {}

    # -- loading ---------------------------------------------------------------------------------------------------

    def _read_yaml(self, path: Path) -> dict[str, Any]:
        self.files.append(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise KsUserError(f"invalid YAML: {getattr(exc, 'problem', exc)}", path=str(path),
                              line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None) from None
        if not isinstance(data, dict):
            raise KsUserError("a phrasing file must map relation names to phrasings", path=str(path))
        return data

    def _read_counts(self, path: Path) -> dict[str, int]:
        counts = self._read_yaml(path)
        for key, value in counts.items():
            if key not in PROBE_COUNT_KEYS or not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise KsUserError(f"{key!r}: expected one of {', '.join(PROBE_COUNT_KEYS)} with a count ≥ 0",
                                  path=str(path))
        return counts

    def _load_relations(self, path: Path) -> None:
        for key, entry in self._read_yaml(path).items():
            if not isinstance(entry, dict) or not set(entry) <= set(PHRASING_KINDS):
                raise KsUserError(f"relation {key!r}: expected a mapping with keys among {', '.join(PHRASING_KINDS)}",
                                  path=str(path))
            # A user entry replaces the kinds it gives; the kinds it leaves out keep the shipped phrasings.
            self.relations[str(key)] = {**self.relations.get(str(key), {}), **entry}
            self.sources[str(key)] = path.name

    def _load_probe_template(self, path: Path, probe_type: str) -> None:
        self.files.append(path)
        try:
            self.probe_templates[probe_type] = SandboxedTemplate.compile(self.env, path.read_text(encoding="utf-8"))
        except jinja2.TemplateSyntaxError as exc:
            raise KsUserError(f"template syntax error: {exc.message}", path=str(path), line=exc.lineno) from None
        self.probe_files[probe_type] = path
        self.probe_names[probe_type] = str(path)

    # -- lookup ----------------------------------------------------------------------------------------------------

    def phrasings(self, relation_id: str, relation_label: str, kind: str) -> list[Phrasing]:
        """The phrasings of one kind for a relation: written ones when the relation has an entry, else generic ones
        from its label (with the label bound as `relation`)."""
        key = (relation_id, relation_label, kind)
        if key not in self._cache:
            self._cache[key] = self._phrasings(relation_id, relation_label, kind)
        return self._cache[key]

    def _phrasings(self, relation_id: str, relation_label: str, kind: str) -> list[Phrasing]:
        entry_key = relation_id if relation_id in self.relations else _local_name(relation_id)
        entry = self.relations.get(entry_key)
        if entry is not None and kind in entry:
            texts, prefix = entry[kind], f"{self.sources[entry_key]}:{entry_key}/{kind}"
            globals_: dict[str, Any] = {}
        else:
            form = label_form(relation_label)
            texts, prefix = self.generic[form][kind], f"generic.yaml:{form}/{kind}"
            globals_ = {"relation": relation_label}
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for i, text in enumerate(texts):
            template_id = f"{prefix}/{i}"
            try:
                template = SandboxedTemplate.compile(self.env, text, globals_)
            except jinja2.TemplateSyntaxError as exc:
                raise KsUserError(f"template {template_id}: syntax error: {exc.message}") from None
            out.append(Phrasing(template_id, template))
        return out

    def sha256(self) -> str:
        """One hash over every template and phrasing file read (names and bytes, in reading order)."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()

    def render_probe(self, probe_type: str, **variables: Any) -> str:
        """The probe's text (not memoised: a probe's variables are rarely seen twice, and a cache would grow with the
        rows)."""
        return _render(self.probe_templates[probe_type], self.probe_names[probe_type], variables, "").strip()


def label_form(label: str) -> str:
    """Which generic phrasing a relation label reads best in: `noun`, `verb` or `of` (the forms that put "is"
    before the label: "part of", and participles such as "located in")."""
    text = label.strip().lower()
    first = text.split(" ", 1)[0]
    if text.startswith(_VERB_STARTS):  # "is a subfield of" carries its own verb: no second "is"
        return "verb"
    if text.endswith(" of") or (" " in text and first.endswith(("ed", "en")) and first not in ("seen",)):
        return "of"
    if text.endswith(_VERB_ENDS):
        return "verb"
    if " " not in text and text.endswith("s") and not text.endswith("ss"):  # "orbits", "contains"
        return "verb"
    return "noun"


def _local_name(relation_id: str) -> str:
    for sep in ("#", "/", ":"):
        if sep in relation_id:
            return relation_id.rsplit(sep, 1)[1]
    return relation_id


@dataclass(frozen=True)
class SandboxedTemplate:
    """A template compiled in the sandbox, and, when it is nothing but text and plain `{{ name }}` expressions (every
    shipped template and phrasing), the same as a list of parts joined without Jinja: such a template can reach
    nothing but its variables, so the sandbox has nothing to guard, and a render then costs a join instead of a
    Jinja context (the largest cost of rendering a million rows). Anything else — filters, attributes, calls,
    control flow — renders through Jinja."""

    jinja: jinja2.Template
    parts: tuple[str | tuple[str], ...] | None  # text, or (variable name,)
    globals: dict[str, Any]

    @classmethod
    def compile(cls, env: SandboxedEnvironment, source: str, globals_: dict[str, Any] | None = None
                ) -> SandboxedTemplate:
        globals_ = globals_ or {}
        return cls(env.from_string(source, globals=globals_), _plain_parts(env.parse(source)), globals_)

    def render(self, **variables: Any) -> str:
        if self.parts is None:
            return self.jinja.render(**variables)
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name = part[0]
            value = variables[name] if name in variables else self.globals.get(name, _MISSING)
            if value is _MISSING:  # undefined (or one of Jinja's own globals): Jinja says what it does with it
                return self.jinja.render(**variables)
            out.append(str(value))
        return "".join(out)


_MISSING = object()


def _plain_parts(tree: jinja2.nodes.Template) -> tuple[str | tuple[str], ...] | None:
    """The parts of a template made of text and `{{ name }}` only, else None."""
    parts: list[str | tuple[str]] = []
    for statement in tree.body:
        if not isinstance(statement, jinja2.nodes.Output):
            return None
        for node in statement.nodes:
            if isinstance(node, jinja2.nodes.TemplateData):
                parts.append(node.data)
            elif isinstance(node, jinja2.nodes.Name) and node.ctx == "load":
                parts.append((node.name,))
            else:
                return None
    return tuple(parts)


def _render(template: SandboxedTemplate, name: str, variables: dict[str, Any], where: str) -> str:
    try:
        text = template.render(**variables)
        # a label ending in a full stop ("Washington, D.C.") must not end its sentence twice
        return text[:-1] if text.endswith("..") and not text.endswith("...") else text
    except jinja2.UndefinedError as exc:
        line = _template_line(exc)
        raise KsUserError(f"template {name}{f' line {line}' if line else ''}: {exc.message}"
                          f"{f' ({where})' if where else ''}") from None
    except jinja2.exceptions.SecurityError as exc:
        raise KsUserError(f"template {name}: not allowed in the sandbox: {exc}") from None


def _template_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
