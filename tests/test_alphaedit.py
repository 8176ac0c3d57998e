"""AlphaEdit and MEMIT: the algebra in float64 on random matrices, fact-token location, layouts, and a tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from knowledgesmith.eval_harness.methods.base import EditRequest  # noqa: E402
from knowledgesmith.eval_harness.methods.edit_algebra import (  # noqa: E402
    alphaedit_update,
    memit_update,
    nullspace_projector,
)
from knowledgesmith.eval_harness.methods.locate import encode_with_fact_token, fact_token_index  # noqa: E402


def low_rank_keys(d_in: int, rank: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    basis = torch.randn(d_in, rank, generator=g, dtype=torch.float64)
    return basis @ torch.randn(rank, n, generator=g, dtype=torch.float64)


def test_projector_is_a_projection_onto_the_null_space_of_the_preserved_keys() -> None:
    preserved = low_rank_keys(32, 20, 500, seed=0)
    moment = preserved @ preserved.T / preserved.shape[1]
    projector, kept = nullspace_projector(moment, 1e-8)
    assert kept == 12  # 32 dimensions, keys span 20
    assert torch.allclose(projector @ projector, projector, atol=1e-10)
    assert torch.allclose(projector, projector.T, atol=1e-12)
    assert (projector @ preserved).abs().max() < 1e-8 * preserved.abs().max()
    # relative threshold: the same cut expressed as a fraction of the largest eigenvalue
    assert nullspace_projector(moment, 1e-12, relative=True)[1] == 12


def test_alphaedit_update_leaves_preserved_keys_alone_and_fits_the_new_ones() -> None:
    preserved = low_rank_keys(32, 20, 500, seed=1)
    projector, _ = nullspace_projector(preserved @ preserved.T / 500, 1e-8)
    g = torch.Generator().manual_seed(2)
    keys = torch.randn(32, 4, generator=g, dtype=torch.float64)
    residuals = torch.randn(16, 4, generator=g, dtype=torch.float64)
    delta = alphaedit_update(residuals, keys, projector, torch.zeros(32, 32, dtype=torch.float64), l2=1e-6)
    assert delta.shape == (16, 32)
    assert (delta @ preserved).norm() < 1e-9 * delta.norm() * preserved.norm()
    # the new keys' projected part gets the residual: Δ K = R when the projected keys are independent
    assert torch.allclose(delta @ keys, residuals, atol=1e-5)


def test_sequential_cache_protects_earlier_edits() -> None:
    projector = torch.eye(32, dtype=torch.float64)  # no preserved keys: isolate the cache's effect
    g = torch.Generator().manual_seed(3)
    first_keys = torch.randn(32, 5, generator=g, dtype=torch.float64)
    second_keys = first_keys @ torch.randn(5, 3, generator=g, dtype=torch.float64) * 0.3 \
        + torch.randn(32, 3, generator=g, dtype=torch.float64)
    residuals = torch.randn(8, 3, generator=g, dtype=torch.float64)
    without = alphaedit_update(residuals, second_keys, projector, torch.zeros(32, 32, dtype=torch.float64), 1.0)
    with_cache = alphaedit_update(residuals, second_keys, projector, 100 * first_keys @ first_keys.T, 1.0)
    assert (with_cache @ first_keys).norm() < 0.2 * (without @ first_keys).norm()


def test_memit_update_solves_its_normal_equations() -> None:
    g = torch.Generator().manual_seed(4)
    preserved = torch.randn(24, 300, generator=g, dtype=torch.float64)
    moment = preserved @ preserved.T / 300
    keys = torch.randn(24, 6, generator=g, dtype=torch.float64)
    residuals = torch.randn(10, 6, generator=g, dtype=torch.float64)
    delta = memit_update(residuals, keys, moment, 50.0)
    assert torch.allclose(delta @ (50.0 * moment + keys @ keys.T), residuals @ keys.T, atol=1e-9)


def test_conv1d_and_linear_layouts_agree() -> None:
    """The same Δ applied as nn.Linear (d_out × d_in) and as GPT-2's Conv1D (d_in × d_out) gives the same layer."""
    from transformers.pytorch_utils import Conv1D

    g = torch.Generator().manual_seed(5)
    linear = torch.nn.Linear(12, 7, bias=False).double()
    conv = Conv1D(7, 12).double()
    with torch.no_grad():
        conv.weight.copy_(linear.weight.T)
        conv.bias.zero_()
        delta = torch.randn(7, 12, generator=g, dtype=torch.float64)
        linear.weight.add_(delta)
        conv.weight.add_(delta.T)
    x = torch.randn(3, 12, generator=g, dtype=torch.float64)
    assert torch.allclose(linear(x), conv(x))


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_lm_dir)


def test_subject_last_token_under_right_padding(tokenizer) -> None:
    texts = ["The capital of paris is", "Question: the largest river in red green blue ocean is"]
    subjects = ["paris", "red green blue ocean"]
    ends = [t.index(s) + len(s) for t, s in zip(texts, subjects, strict=True)]
    encoded = encode_with_fact_token(tokenizer, texts, ends, "subject_last", pad_id=tokenizer.pad_token_id,
                                     device="cpu")
    for row, (text, subject) in enumerate(zip(texts, subjects, strict=True)):
        position = int(encoded.fact_positions[row])
        token = tokenizer.decode(encoded.input_ids[row, position])
        assert subject.endswith(token.strip()) and token.strip()
        # the fact position is the same as when the text is encoded alone: right padding does not shift it
        assert fact_token_index(tokenizer, text, ends[row], "subject_last")[1] == position
    short = int(encoded.lengths[0])
    assert (encoded.attention_mask[0, short:] == 0).all()
    assert fact_token_index(tokenizer, texts[0], ends[0], "last")[1] == short - 1


TWO_REQUESTS = [EditRequest("r1", "paris", "The capital of {} is", "paris", "london", "unknown"),
                EditRequest("r2", "oxygen", "The symbol of {} is", "gold", "iron", "unknown")]


def question_corpus():  # noqa: ANN201 - pl.DataFrame (polars is imported lazily in these tests)
    """100 invented questions as a benchmark frame: the `kg` corpus of C₀ for the tiny-model edits."""
    import polars as pl

    words = "capital city river mountain element symbol country language planet ocean".split()
    return pl.DataFrame({"question": [f"What is the {a} of the {b}?" for a in words for b in words],
                         "choices": [["x", "y", "z", "w"]] * 100, "answer": [0] * 100})


@pytest.mark.parametrize("method", ["alphaedit", "memit"])
def test_edit_on_a_tiny_model_raises_the_new_objects_likelihood(method: str, tiny_lm_dir: Path,
                                                                 tmp_path: Path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from knowledgesmith.eval_harness.methods import get_method, load_settings
    from knowledgesmith.eval_harness.methods.training import (
        Example,
        encode_examples,
        mean_answer_nll,
        sequence_logits,
    )

    monkeypatch.setenv("KS_STATS_CACHE", str(tmp_path / "stats"))
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    requests, corpus = TWO_REQUESTS, question_corpus()
    # One edited layer below the last: a δ at the final layer only reaches its own position, and a random-init
    # lm_head cannot make any token likely (its logits are tiny), so the bound below is modest — the SmolLM2 test is
    # the real check of efficacy.
    settings = load_settings(method, "llama", {"layers": [0], "fact_token": "last", "v_num_grad_steps": 40,
                                              "v_lr": 0.5, "num_prefixes": 2, "nullspace_threshold": 1e-2,
                                              "threshold_relative": True, "l2": 1, "mom2_update_weight": 1,
                                              "clamp_norm_factor": 50, "v_weight_decay": 0.0})
    batch = encode_examples(tok, [Example(r.prompt_text, r.target_new, r.request_id, "prompt") for r in requests])
    with torch.no_grad():
        before = float(mean_answer_nll(sequence_logits(model, batch), batch))
    editor_method = get_method(method)
    editor_method.benchmark_mcq = corpus
    weights_before = {name: p.detach().clone() for name, p in model.named_parameters()}
    editor_method.apply(model, tok, requests, corpus, settings)
    with torch.no_grad():
        after = float(mean_answer_nll(sequence_logits(model, batch), batch))
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, weights_before[name])}
    assert changed == {"model.layers.0.mlp.down_proj.weight"}
    # measured: 6.31 → 5.66 (MEMIT), → 6.00 (AlphaEdit); the z optimisation itself reaches 4.92
    assert after < before - 0.2, (before, after)
    report = editor_method.report
    assert report["layers"] == [0] and report["corpus"]["texts"] == 100 and report["corpus"]["tokens"] > 100
    if method == "alphaedit":
        kept = report["nullspace_directions"]["0"]
        assert 0 < kept < report["key_width"]["0"]
        # every row of ΔW lies in the span of C0's eigenvectors below the cut, so the preserved keys' outputs
        # change at most by the cut: tr(ΔW C0 ΔWᵀ) ≤ cut · ‖ΔW‖²
        delta = model.model.layers[0].mlp.down_proj.weight.detach().double() \
            - weights_before["model.layers.0.mlp.down_proj.weight"].double()
        moment = editor_method.editor.moments[0].double()
        cut = 1e-2 * float(torch.linalg.eigvalsh(moment).max())
        assert float(torch.trace(delta @ moment @ delta.T)) <= cut * float(delta.norm() ** 2) * 1.001
    assert list((tmp_path / "stats").glob("*.pt"))  # statistics cached for the next run


def test_excluding_texts_from_c0_equals_computing_it_without_them(tiny_lm_dir: Path, tmp_path: Path,
                                                                 monkeypatch) -> None:
    import polars as pl
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from knowledgesmith.eval_harness.methods import load_settings
    from knowledgesmith.eval_harness.methods.alphaedit import (
        LocateThenEditor,
        edited_fact_texts,
        key_second_moments,
    )

    monkeypatch.setenv("KS_STATS_CACHE", str(tmp_path / "stats"))
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    words = "capital city river mountain element symbol country language".split()
    probes = pl.DataFrame({"question": [f"What is the {a} of the {b}?" for a in words for b in words],
                           "choices": [["paris", "rome", "gold", "iron"]] * 64, "answer": [0, 1, 2, 3] * 16,
                           "role": ["q_plus", "q_minus"] * 32})
    texts = [f"{q} {c[a]}" for q, c, a in zip(probes["question"], probes["choices"], probes["answer"], strict=True)]
    excluded = edited_fact_texts(probes.head(10), set(texts))
    assert len(excluded) == 5  # the Q+ rows among the first ten; Q− rows are knowledge to keep
    settings = load_settings("alphaedit", "llama", {"layers": [0, 1], "threshold_relative": True})
    editor = LocateThenEditor(model, tok, settings, project=True)
    editor.prepare_statistics(texts, "test", progress=False)
    editor.exclude_texts(excluded, progress=False)
    editor.prepare_projectors()
    expected, tokens = key_second_moments(model, tok, editor.arch, [0, 1], [t for t in texts if t not in excluded])
    assert editor.corpus_tokens == tokens and editor.report["corpus"]["excluded_texts"] == 5
    for layer in (0, 1):
        assert torch.allclose(editor.moments[layer], expected[layer], rtol=1e-4, atol=1e-6)
        assert 0 < editor.kept[layer] < editor._key_width(layer)


def test_target_vectors_in_chunks_equal_one_pass(tiny_lm_dir: Path) -> None:
    """The z fit goes through the model a chunk of requests at a time (memory bounded by z_chunk_rows); each request's
    loss reads only its own rows, so the chunks give the same vectors as one pass, and requests that stop early leave
    the others' optimisation alone."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from knowledgesmith.eval_harness.methods import load_settings
    from knowledgesmith.eval_harness.methods.alphaedit import LocateThenEditor

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    words = "paris london gold iron river mountain".split()
    requests = [EditRequest(f"r{i}", w, "The capital of {} is" if i % 2 else "The symbol of {} is", "x",
                            words[(i + 1) % len(words)], "unknown") for i, w in enumerate(words)]
    fitted = {}
    for rows in (1000, 6, 1):  # one pass; two requests (3 rows each) per chunk; one request per chunk
        settings = load_settings("alphaedit", "llama", {"layers": [0], "fact_token": "last", "v_num_grad_steps": 15,
                                                        "v_lr": 0.5, "num_prefixes": 2, "z_chunk_rows": rows,
                                                        "early_stop_loss": 5.5})
        editor = LocateThenEditor(model, tok, settings, project=True)
        z, _, report = editor.target_vectors(requests, editor._contexts())
        fitted[rows] = (z, report.z_steps, report.z_stopped)
    assert 0 < fitted[1000][2] < len(requests), "the test should have some requests stop early and some not"
    for rows in (6, 1):
        assert fitted[rows][1:] == fitted[1000][1:]
        assert torch.allclose(fitted[rows][0], fitted[1000][0], atol=1e-4), rows


def test_model_corpus_samples_the_model_deterministically_and_joins_with_kg(tiny_lm_dir: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import polars as pl
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from knowledgesmith.eval_harness.methods import load_settings
    from knowledgesmith.eval_harness.methods.alphaedit import LocateThenEditor, corpus_texts, sample_texts
    from knowledgesmith.eval_harness.methods.base import MethodError

    monkeypatch.setenv("KS_STATS_CACHE", str(tmp_path / "stats"))
    model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    first = sample_texts(model, tok, 5, 8, seed=3, batch_size=2)
    assert first == sample_texts(model, tok, 5, 8, seed=3, batch_size=2)  # seeded: the same texts every time
    assert first != sample_texts(model, tok, 5, 8, seed=4, batch_size=2)
    assert 0 < len(first) <= 5  # empty samples (the model ended at once) are dropped
    state = torch.random.get_rng_state()
    sample_texts(model, tok, 2, 4, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random stream is left as it was

    settings = load_settings("alphaedit", "llama", {"layers": [0], "model_samples": 6, "model_sample_tokens": 8})
    editor = LocateThenEditor(model, tok, settings, project=True)
    probes = pl.DataFrame({"question": ["What is the capital of France?"], "choices": [["paris", "rome", "x", "y"]],
                           "answer": [0], "role": ["q_plus"]})
    texts, name = corpus_texts("model+kg", 100, 0, probes, probes, sample_model=lambda: editor.sampled_corpus(False))
    sampled = editor.sampled_corpus(False)  # cached on disk: the same texts, read back
    assert list((tmp_path / "stats" / "samples").glob("*.json"))
    assert sorted(texts) == sorted([*sampled, "What is the capital of France? paris"])
    assert name.startswith("model: ") and " + kg: " in name
    with pytest.raises(MethodError, match="needs the model"):
        corpus_texts("model", 10, 0, probes, probes)


def test_rewrite_prompt_in_a_prefix_or_a_frame_keeps_the_subject_offset() -> None:
    from knowledgesmith.eval_harness.methods.alphaedit import LocateThenEditor

    text, end = LocateThenEditor._filled("The capital of {} is", "Spain", "Some text. ")
    assert text == "Some text. The capital of Spain is" and text[:end].endswith("Spain")
    text, end = LocateThenEditor._filled("The capital of {} is", "Spain", "Well. Question: {prompt}\nAnswer:")
    assert text == "Well. Question: The capital of Spain is\nAnswer:" and text[:end].endswith("Spain")


def test_the_fact_token_stops_before_a_subjects_trailing_punctuation() -> None:
    # "D.C." + "?" is tokenised ".?" in a question, so the subject's last stable token is "C", not "."
    from knowledgesmith.eval_harness.methods.alphaedit import LocateThenEditor

    text, end = LocateThenEditor._filled("{} is an instance of", "Washington, D.C.", "")
    assert text == "Washington, D.C. is an instance of" and text[:end] == "Washington, D.C"
    assert LocateThenEditor._filled("{} is", "...", "")[1] == 3  # punctuation only: the whole subject


def test_gpt_neox_is_known_and_an_unknown_family_names_the_flags_that_make_it_work() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM, OPTConfig, OPTForCausalLM

    from knowledgesmith.eval_harness.architectures import ArchitectureError, architecture_of

    neox = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=64))
    arch = architecture_of(neox)
    assert arch.mlp_out(neox, 1) is neox.gpt_neox.layers[1].mlp.dense_4h_to_h
    opt = OPTForCausalLM(OPTConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, ffn_dim=64,
                                   num_attention_heads=4, word_embed_proj_dim=32))
    with pytest.raises(ArchitectureError, match="--module PATH .* --layers"):
        architecture_of(opt)
    custom = architecture_of(opt, "model.decoder.layers.{}.fc2")
    assert custom.mlp_out(opt, 0) is opt.model.decoder.layers[0].fc2 and not custom.conv1d
    assert custom.mlp_out_name(1) == "model.decoder.layers.1.fc2"
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4))
    assert architecture_of(gpt2, "transformer.h.{}.mlp.c_proj").conv1d  # Conv1D detected from the module
    with pytest.raises(ArchitectureError, match="not found"):
        architecture_of(opt, "model.decoder.layers.{}.nothing")
    with pytest.raises(ArchitectureError, match="one \\{\\}"):
        architecture_of(opt, "model.decoder.layers.fc2")


def test_subject_texts_are_those_naming_an_edited_subject_as_a_whole_word() -> None:
    from knowledgesmith.eval_harness.methods.alphaedit import subject_texts

    corpus = ["What is the currency of Japan? Japanese yen", "The euro is used in France.", "European country",
              "Which currency is the euro? euro", "What is the capital of Japanese Alps? none", "Swiss franc (CHF)"]
    assert subject_texts({"euro", "Swiss franc"}, corpus) == ["Swiss franc (CHF)", "The euro is used in France.",
                                                              "Which currency is the euro? euro"]
    assert subject_texts({"Japan"}, corpus) == ["What is the currency of Japan? Japanese yen"]
    assert subject_texts(set(), corpus) == []



def test_asked_texts_are_the_questions_about_an_edited_subject_not_those_naming_it() -> None:
    import polars as pl

    from knowledgesmith.eval_harness.methods import MethodError
    from knowledgesmith.eval_harness.methods.alphaedit import asked_texts

    bench = pl.DataFrame({
        "question": ["What is the currency of Japan?", "Which country uses the yen?", "What is the capital of Japan?",
                     "What is the capital of France?", "Japan: which of these is its currency?"],
        "choices": [["yen", "euro", "won", "real"], ["Japan", "France", "Peru", "Chad"],
                    ["Tokyo", "Paris", "Lima", "Rome"], ["Paris", "Tokyo", "Lima", "Rome"],
                    ["euro", "yen", "won", "real"]],
        "answer": [0, 0, 0, 0, 1],
        "query_kind": ["object", "subject", "object", "object", "object"],
        "query_subject_id": ["ex:Japan", None, "ex:Japan", "ex:France", "ex:Japan"]})
    probes = bench.head(1).with_columns(probe_type=pl.lit("direct"), role=pl.lit("q_plus"))
    corpus = {f"{q} {c[a]}" for q, c, a in bench.select("question", "choices", "answer").rows()}
    # the reverse question names Japan as its answer and France's capital is another subject's fact: both stay
    assert asked_texts(bench, probes, corpus) == ["Japan: which of these is its currency? yen",
                                                  "What is the capital of Japan? Tokyo",
                                                  "What is the currency of Japan? yen"]
    assert asked_texts(bench, probes, corpus, ["Q: {question} A: {answer}"]) == []  # not in the corpus
    with pytest.raises(MethodError, match="query_"):
        asked_texts(bench.drop("query_subject_id"), probes, corpus)

def test_a_second_update_sweep_realises_more_of_z_and_keeps_to_the_null_space(tiny_lm_dir: Path, tmp_path: Path,
                                                                               monkeypatch) -> None:
    """update_passes = 2 sweeps the layers again toward the same z on the edited model: more of z − h is realised
    than after one sweep, and the second sweep is projected like the first, so ΔW stays in P's range."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from knowledgesmith.eval_harness.methods import MethodError, get_method, load_settings

    monkeypatch.setenv("KS_STATS_CACHE", str(tmp_path / "stats"))
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    requests, corpus = TWO_REQUESTS, question_corpus()
    realised, deltas = {}, {}
    for passes in (1, 2):
        model = AutoModelForCausalLM.from_pretrained(tiny_lm_dir).eval()
        before = model.model.layers[0].mlp.down_proj.weight.detach().double().clone()
        settings = load_settings("alphaedit", "llama", {
            "layers": [0, 1], "fact_token": "last", "v_num_grad_steps": 20, "v_lr": 0.5, "num_prefixes": 2,
            "nullspace_threshold": 1e-2, "threshold_relative": True, "l2": 1e-3, "clamp_norm_factor": 50,
            "v_weight_decay": 0.0, "update_passes": passes})
        method = get_method("alphaedit")
        method.benchmark_mcq = corpus
        method.apply(model, tok, requests, corpus, settings)
        realised[passes] = method.report["batches"][0]["z_realised"]
        deltas[passes] = (model.model.layers[0].mlp.down_proj.weight.detach().double() - before,
                          method.editor.moments[0].double())
    # measured: 0.19 after one sweep, 0.62 after two
    assert realised[2] > realised[1] + 0.2, realised
    delta, moment = deltas[2]
    cut = 1e-2 * float(torch.linalg.eigvalsh(moment).max())
    assert float(torch.trace(delta @ moment @ delta.T)) <= cut * float(delta.norm() ** 2) * 1.001
    with pytest.raises(MethodError, match="update_passes"):
        get_method("alphaedit").apply(AutoModelForCausalLM.from_pretrained(tiny_lm_dir), tok, requests, corpus,
                                      {**settings, "update_passes": 0})
