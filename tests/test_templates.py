"""Templates as data (issue 3): the shipped phrasings, `--templates DIR` overrides, generic phrasings from a relation's
label, and the Jinja sandbox around user templates (a one-line `ks-build: error:` and exit 2, nothing written).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pyarrow.parquet as pq
import pytest
import yaml
from jinja2.sandbox import SandboxedEnvironment
from minikg import MINI_KG, build_mini, mcq_rows, requests_by_id

from knowledgesmith.builder.templates import SandboxedTemplate, TemplateLibrary, label_form

SHIPPED = Path(str(resources.files("knowledgesmith.templates")))
REQUEST = "req-d1fdb0134947a5b288950a60"  # Italy's currency: euro → Swiss franc
POUND_ISSUER = "req-797c0f7968d60cb656e63f7f"  # pound sterling's issuer: Bank of England → Bank of Japan


@pytest.fixture(scope="module")
def default_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("templates") / "default"
    build_mini(out)
    return out


def user_templates(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# -- the shipped phrasings -----------------------------------------------------------------------------------------

RELATIONS = yaml.safe_load((SHIPPED / "relations.yaml").read_text(encoding="utf-8"))
GENERIC = yaml.safe_load((SHIPPED / "generic.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("relation", list(RELATIONS))
def test_every_written_relation_has_at_least_three_question_and_three_reverse_phrasings(relation: str) -> None:
    entry = RELATIONS[relation]

    assert len(entry["question"]) >= 3
    assert len(entry["reverse"]) >= 3
    assert len(set(entry["question"])) == len(entry["question"])
    assert len(set(entry["reverse"])) == len(entry["reverse"])


@pytest.mark.parametrize("form", ["noun", "verb", "of"])
def test_every_generic_form_has_at_least_three_question_and_three_reverse_phrasings(form: str) -> None:
    assert len(GENERIC[form]["question"]) >= 3
    assert len(GENERIC[form]["reverse"]) >= 3


@pytest.mark.parametrize(("name", "entry", "names"), [
    *(pytest.param(f"relations.yaml:{key}", RELATIONS[key], {"subject", "object"}, id=key) for key in RELATIONS),
    *(pytest.param(f"generic.yaml:{form}", GENERIC[form], {"subject", "object", "relation"}, id=f"generic-{form}")
      for form in GENERIC),
])
def test_every_shipped_phrasing_renders_in_the_sandbox_from_subject_and_object_alone(
        name: str, entry: dict[str, Any], names: set[str]) -> None:
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    variables = {"subject": "S", "object": "O", "relation": "r"}
    for kind, texts in entry.items():
        for text in [texts] if isinstance(texts, str) else texts:
            assert env.from_string(text).render({k: variables[k] for k in names}), f"{name}/{kind}: {text}"
    assert entry["prompt"].count("{}") == 1, name
    assert "{{ subject }}" not in entry["prompt"], name


def test_plain_templates_render_without_jinja_exactly_as_jinja_renders_them() -> None:
    # every shipped probe template and phrasing is text and {{ name }} only: joined directly, byte for byte what the
    # sandbox renders; a template with anything else (a filter here) is left to Jinja
    library = TemplateLibrary()
    variables = {"subject": "Washington, D.C.", "object": "Zürich {{ x }}", "question": "Q?", "reverse_question": "R?",
                 "second_hop_question": "H?", "same_question": "S?", "context": "C."}
    templates = [*library.probe_templates.values()]
    for relation in [*library.relations, "part of", "orbits", "capital"]:  # written, then the three generic forms
        for kind in PHRASING:
            templates += [p.template for p in library.phrasings(relation, relation, kind)]
    assert templates and all(t.parts is not None for t in templates)
    for template in templates:
        assert template.render(**variables) == template.jinja.render(**variables)
    filtered = SandboxedTemplate.compile(library.env, "{{ subject | upper }} and {{ object }}")
    assert filtered.parts is None and filtered.render(subject="a", object="b") == "A and b"


PHRASING = ("question", "reverse", "statement", "noun_phrase", "same", "prompt", "neutral")


@pytest.mark.parametrize(("label", "form"), [
    ("capital", "noun"), ("issuer", "noun"), ("population", "noun"), ("class", "noun"), ("address", "noun"),
    ("has topping", "verb"), ("orbits", "verb"), ("contains", "verb"), ("flows into", "verb"),
    ("located in", "of"), ("is orbited by", "verb"),  # a participle reads with "is": "X is located in …?"
    ("is a subfield of", "verb"),  # a label with its own "is" takes no second one
    ("part of", "of"), ("capital of", "of"), ("subclass of", "of"),
])
def test_a_relation_label_reads_as_a_noun_a_verb_phrase_or_an_of_phrase(label: str, form: str) -> None:
    assert label_form(label) == form


@pytest.mark.parametrize(("label", "kind", "expected"), [
    ("issuer", "question", ["What is the issuer of S?", "Which of the following is the issuer of S?",
                            "S: which of these is its issuer?"]),
    ("issuer", "reverse", ["Which of the following has O as its issuer?", "O is the issuer of which of these?",
                           "Whose issuer is O?"]),
    ("flows into", "question", ["S flows into which of the following?",
                                "Which of the following does S stand in the relation 'flows into' to?",
                                "Complete the fact: S flows into …"]),
    ("flows into", "reverse", ["Which of the following flows into O?", "What flows into O?",
                               "Which of these stands in the relation 'flows into' to O?"]),
    ("part of", "question", ["S is part of which of the following?", "Which of the following is S part of?",
                             "Complete the fact: S is part of …"]),
    ("part of", "reverse", ["Which of the following is part of O?", "What is part of O?",
                            "Which of these is part of O?"]),
    ("issuer", "prompt", ["The issuer of {} is"]),
    ("flows into", "prompt", ["{} flows into"]),
    ("part of", "prompt", ["{} is part of"]),
])
def test_a_relation_without_an_entry_is_phrased_generically_from_its_label(label: str, kind: str,
                                                                          expected: list[str]) -> None:
    relation_id = "https://example.org/relation/" + label.title().replace(" ", "")
    phrasings = TemplateLibrary().phrasings(relation_id, label, kind)

    assert [p.render(subject="S", object="O") for p in phrasings] == expected
    assert [p.template_id for p in phrasings] == [f"generic.yaml:{label_form(label)}/{kind}/{i}"
                                                  for i in range(len(expected))]


def test_the_mini_kgs_issuer_rows_use_the_generic_noun_phrasings(default_build: Path) -> None:
    rows = {row["id"]: row for row in mcq_rows(default_build)}

    assert [(rows[f"{POUND_ISSUER}/{probe}"]["question"], rows[f"{POUND_ISSUER}/{probe}"]["template_id"])
            for probe in ("direct/0", "direct/1", "direct/2", "reverse/0")] == [
        ("What is the issuer of pound sterling?", "generic.yaml:noun/question/0"),
        ("Which of the following is the issuer of pound sterling?", "generic.yaml:noun/question/1"),
        ("pound sterling: which of these is its issuer?", "generic.yaml:noun/question/2"),
        ("Which of the following has Bank of England as its issuer?", "generic.yaml:noun/reverse/0"),
    ]
    assert requests_by_id(default_build)[POUND_ISSUER]["prompt"] == "The issuer of {} is"


RIVERS_AND_DISTRICTS = """\
@prefix g: <https://knowledgesmith.org/test/generic/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
g:flowsInto rdfs:label "flows into" .
g:partOf rdfs:label "part of" .
g:River rdfs:label "river" . g:Sea rdfs:label "sea" . g:District rdfs:label "district" . g:City rdfs:label "city" .
g:Seine a g:River ; rdfs:label "Seine" ; g:flowsInto g:EnglishChannel .
g:Rhine a g:River ; rdfs:label "Rhine" ; g:flowsInto g:NorthSea .
g:Danube a g:River ; rdfs:label "Danube" ; g:flowsInto g:BlackSea .
g:Rhone a g:River ; rdfs:label "Rhône" ; g:flowsInto g:Mediterranean .
g:Po a g:River ; rdfs:label "Po" ; g:flowsInto g:Adriatic .
g:Vistula a g:River ; rdfs:label "Vistula" ; g:flowsInto g:Baltic .
g:EnglishChannel a g:Sea ; rdfs:label "English Channel" .
g:NorthSea a g:Sea ; rdfs:label "North Sea" .
g:BlackSea a g:Sea ; rdfs:label "Black Sea" .
g:Mediterranean a g:Sea ; rdfs:label "Mediterranean Sea" .
g:Adriatic a g:Sea ; rdfs:label "Adriatic Sea" .
g:Baltic a g:Sea ; rdfs:label "Baltic Sea" .
g:Marais a g:District ; rdfs:label "Le Marais" ; g:partOf g:Paris .
g:Trastevere a g:District ; rdfs:label "Trastevere" ; g:partOf g:Rome .
g:Jordaan a g:District ; rdfs:label "Jordaan" ; g:partOf g:Amsterdam .
g:Kreuzberg a g:District ; rdfs:label "Kreuzberg" ; g:partOf g:Berlin .
g:Shibuya a g:District ; rdfs:label "Shibuya" ; g:partOf g:Tokyo .
g:Paris a g:City ; rdfs:label "Paris" .
g:Rome a g:City ; rdfs:label "Rome" .
g:Amsterdam a g:City ; rdfs:label "Amsterdam" .
g:Berlin a g:City ; rdfs:label "Berlin" .
g:Tokyo a g:City ; rdfs:label "Tokyo" .
"""

GENERIC_TEXTS = {
    "verb/question": ["{s} flows into which of the following?",
                      "Which of the following does {s} stand in the relation 'flows into' to?",
                      "Complete the fact: {s} flows into …"],
    "verb/reverse": ["Which of the following flows into {o}?", "What flows into {o}?",
                     "Which of these stands in the relation 'flows into' to {o}?"],
    "of/question": ["{s} is part of which of the following?", "Which of the following is {s} part of?",
                    "Complete the fact: {s} is part of …"],
    "of/reverse": ["Which of the following is part of {o}?", "What is part of {o}?", "Which of these is part of {o}?"],
}


def test_rows_of_verb_and_of_relations_without_an_entry_read_as_their_generic_phrasings(tmp_path: Path) -> None:
    kg = tmp_path / "rivers.ttl"
    kg.write_text(RIVERS_AND_DISTRICTS, encoding="utf-8")
    build_mini(tmp_path / "out", kg=kg)
    labels = {n["node_id"]: n["label"] for n in pq.read_table(tmp_path / "out" / "nodes.parquet").to_pylist()}
    checked: set[str] = set()

    for row in mcq_rows(tmp_path / "out"):
        form_kind, _, index = row["template_id"].removeprefix("generic.yaml:").rpartition("/")
        if form_kind not in GENERIC_TEXTS or row["probe_type"] == "multi_hop":
            continue
        s, o = labels.get(row["query_subject_id"]), labels.get(row["query_object_id"])
        expected = GENERIC_TEXTS[form_kind][int(index)].format(s=s, o=o)
        question = row["question"].rpartition("Question: ")[2] if row["probe_type"] == "conflict" else row["question"]
        assert question == expected, row["id"]
        checked.add(form_kind)

    assert checked == set(GENERIC_TEXTS)


# -- --templates DIR -------------------------------------------------------------------------------------------------

MY_CURRENCY = """\
currency:
  question:
    - "Which money is legal tender in {{ subject }}?"
    - "In {{ subject }}, prices are given in which currency?"
    - "{{ subject }} pays in which of these currencies?"
  reverse:
    - "Where is the {{ object }} legal tender?"
    - "Which country pays in the {{ object }}?"
    - "The {{ object }} is legal tender in which country?"
  statement: ["{{ subject }} pays in {{ object }}."]
  noun_phrase: "the money of {{ subject }}"
  same: "Which of the following pays in the same money as {{ subject }}?"
  prompt: "{} pays in"
  neutral: "I do not know what money it uses."
"""


def test_a_user_relation_entry_rephrases_that_relations_rows_and_nothing_else(default_build: Path,
                                                                              tmp_path: Path) -> None:
    build_mini(tmp_path / "mine", "--templates", user_templates(tmp_path / "tpl", {"mine.yaml": MY_CURRENCY}))
    before = {row["id"]: row for row in mcq_rows(default_build)}
    after = {row["id"]: row for row in mcq_rows(tmp_path / "mine")}
    currency = "https://knowledgesmith.org/test/mini/relation/currency"

    assert before.keys() == after.keys()
    for row_id, old in before.items():
        new = after[row_id]
        rephrased = old["template_id"].startswith("relations.yaml:currency/") or (
            old["probe_type"] == "multi_hop" and old["query_relation_id"] == currency)
        for column in ("choices", "answer", "target", "choice_ids", "distance", "role", "provenance"):
            assert new[column] == old[column], (row_id, column)
        assert (new["question"] != old["question"]) == rephrased, row_id
        assert new["template_id"] == old["template_id"].replace("relations.yaml:currency/", "mine.yaml:currency/")
    assert {probe: after[f"{REQUEST}/{probe}"]["question"] for probe in (
        "direct/0", "direct/1", "direct/2", "reverse/0", "multi_hop/0", "comparison/0", "conflict/0")} == {
        "direct/0": "Which money is legal tender in Italy?",
        "direct/1": "In Italy, prices are given in which currency?",
        "direct/2": "Italy pays in which of these currencies?",
        "reverse/0": "Where is the euro legal tender?",
        "multi_hop/0": "What is the issuer of the money of Italy?",
        "comparison/0": "Which of the following pays in the same money as Italy?",
        "conflict/0": "Context: Italy pays in Swiss franc.\nQuestion: Which money is legal tender in Italy?",
    }
    request = requests_by_id(tmp_path / "mine")[REQUEST]
    assert (request["prompt"], request["neutral_answer"]) == ("{} pays in", "I do not know what money it uses.")


def test_a_user_probe_template_replaces_the_shipped_one(default_build: Path, tmp_path: Path) -> None:
    folder = user_templates(tmp_path / "tpl", {"direct.jinja": "Q: {{ question }}\n"})
    build_mini(tmp_path / "mine", "--templates", folder)
    before = {row["id"]: row["question"] for row in mcq_rows(default_build)}
    after = {row["id"]: row for row in mcq_rows(tmp_path / "mine")}

    assert after[f"{REQUEST}/direct/0"]["question"] == "Q: What is the currency of Italy?"
    for row_id, row in after.items():
        expected = f"Q: {before[row_id]}" if row["probe_type"] == "direct" else before[row_id]
        assert row["question"] == expected, row_id


def test_the_manifest_records_the_sha256_of_the_templates_used(default_build: Path, tmp_path: Path) -> None:
    build_mini(tmp_path / "mine", "--templates", user_templates(tmp_path / "tpl", {"mine.yaml": MY_CURRENCY}))
    default = json.loads((default_build / "manifest.json").read_text())
    mine = json.loads((tmp_path / "mine" / "manifest.json").read_text())

    def templates_entries(manifest: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in manifest.items() if "template" in key}

    assert templates_entries(default)
    assert templates_entries(default) != templates_entries(mine)


# -- the sandbox and its errors ------------------------------------------------------------------------------------

ESCAPES = [
    ("direct.jinja", "{{ ''.__class__.__mro__ }}", "access to attribute '__class__' of 'str' object is unsafe."),
    ("reverse.jinja", "{{ cycler.__init__.__globals__ }}",
     "access to attribute '__init__' of 'type' object is unsafe."),
    ("direct.jinja", "{{ question|attr('__class__') }}", "access to attribute '__class__' of 'str' object is unsafe."),
    ("contextual.jinja", "{{ lipsum.__globals__ }}",
     "access to attribute '__globals__' of 'function' object is unsafe."),
    ("direct.jinja", "{{ '{0.__class__.__mro__}'.format(question) }}",
     "access to attribute '__class__' of 'str' object is unsafe."),
    ("direct.jinja", "{% set c = question.__class__ %}{{ c }}",
     "access to attribute '__class__' of 'str' object is unsafe."),
]


@pytest.mark.parametrize(("file", "text", "message"), ESCAPES)
def test_a_probe_template_reaching_python_internals_is_refused_in_one_line(
        file: str, text: str, message: str, tmp_path: Path, run_ks_build: Callable[..., Any]) -> None:
    folder = user_templates(tmp_path / "tpl", {file: text + "\n"})
    out = tmp_path / "out"

    result = run_ks_build("--kg", MINI_KG, "--out", out, "--max-k", "10", "--quiet", "--templates", folder)

    assert result.code == 2
    assert result.err == f"ks-build: error: template {folder / file}: not allowed in the sandbox: {message}\n"
    assert not out.exists()


def test_a_relation_phrasing_reaching_python_internals_is_refused_in_one_line(
        tmp_path: Path, run_ks_build: Callable[..., Any]) -> None:
    folder = user_templates(tmp_path / "tpl", {"evil.yaml": MY_CURRENCY.replace(
        "Which money is legal tender in {{ subject }}?", "{{ subject.__class__.__base__.__subclasses__() }}")})
    out = tmp_path / "out"

    result = run_ks_build("--kg", MINI_KG, "--out", out, "--max-k", "10", "--quiet", "--templates", folder)

    assert result.code == 2
    assert result.err == ("ks-build: error: template evil.yaml:currency/question/0: not allowed in the sandbox: "
                          "access to attribute '__class__' of 'str' object is unsafe.\n")
    assert not out.exists()


def test_a_missing_variable_in_a_probe_template_names_the_file_and_line(tmp_path: Path,
                                                                        run_ks_build: Callable[..., Any]) -> None:
    folder = user_templates(tmp_path / "tpl", {"direct.jinja": "{#- a direct question -#}\n{{ question }}\n"
                                                               "Hint: {{ hint }}\n"})
    out = tmp_path / "out"

    result = run_ks_build("--kg", MINI_KG, "--out", out, "--max-k", "10", "--quiet", "--templates", folder)

    assert result.code == 2
    assert result.err == f"ks-build: error: template {folder / 'direct.jinja'} line 3: 'hint' is undefined\n"
    assert not out.exists()


def test_a_missing_variable_in_a_relation_phrasing_names_the_phrasing_and_line(
        tmp_path: Path, run_ks_build: Callable[..., Any]) -> None:
    folder = user_templates(tmp_path / "tpl", {"mine.yaml": MY_CURRENCY.replace(
        "Which money is legal tender in {{ subject }}?", "Which money is legal tender in {{ country }}?")})

    result = run_ks_build("--kg", MINI_KG, "--out", tmp_path / "out", "--max-k", "10", "--quiet",
                          "--templates", folder)

    assert result.code == 2
    assert result.err.startswith("ks-build: error: template mine.yaml:currency/question/0 line 1: "
                                 "'country' is undefined (req-")
    assert result.err.count("\n") == 1


def test_a_syntax_error_in_a_probe_template_names_the_file_and_line(tmp_path: Path,
                                                                   run_ks_build: Callable[..., Any]) -> None:
    folder = user_templates(tmp_path / "tpl", {"reverse.jinja": "{{ reverse_question }}\n{% if %}\n"})

    result = run_ks_build("--kg", MINI_KG, "--out", tmp_path / "out", "--quiet", "--templates", folder)

    assert result.code == 2
    assert result.err.startswith(f"ks-build: error: {folder / 'reverse.jinja'}:2: template syntax error: ")
    assert result.err.count("\n") == 1


def test_templates_that_are_not_a_folder_are_a_one_line_error(tmp_path: Path,
                                                              run_ks_build: Callable[..., Any]) -> None:
    result = run_ks_build("--kg", MINI_KG, "--out", tmp_path / "out", "--templates", tmp_path / "nowhere")

    assert result.code == 2
    assert result.err == (f"ks-build: error: {tmp_path / 'nowhere'}: --templates must be a folder of .jinja and "
                          ".yaml files\n")
