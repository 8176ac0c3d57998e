"""Turtle output in the shipped KGs' layout: a comment header, prefixes, then one block per subject, all sorted."""

from __future__ import annotations

from collections import defaultdict

PREFIXES = """@prefix rdf:  <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl:  <http://www.w3.org/2002/07/owl#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd:  <http://www.w3.org/2001/XMLSchema#> .
"""


def literal(text: str, datatype: str | None = None, lang: str | None = "en") -> str:
    """A Turtle literal; strings are escaped so that any label a model writes stays valid Turtle."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    if datatype:
        return f'"{escaped}"^^{datatype}'
    return f'"{escaped}"@{lang}' if lang else f'"{escaped}"'


def write_turtle(statements: set[tuple[str, str, str]], header: str, prefixes: dict[str, str]) -> str:
    """Serialise (subject, predicate, object) terms, already in Turtle syntax, deterministically."""
    by_subject: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for s, p, o in statements:
        by_subject[s].append((p, o))
    head = "".join(f"# {line}".rstrip() + "\n" for line in header.rstrip("\n").split("\n"))
    own = "".join(f"@prefix {name + ':':<5} <{iri}> .\n" for name, iri in prefixes.items())
    parts = [head, own + PREFIXES]
    for s in sorted(by_subject):
        body = " ;\n    ".join(f"{p} {o}" for p, o in sorted(by_subject[s]))
        parts.append(f"{s} {body} .\n")
    return "\n".join(parts)
