"""AlphaEdit (Fang et al., ICLR 2025) and MEMIT (Meng et al., ICLR 2023): locate-then-edit of MLP output projections.

For a batch of requests (s, r, o → o*): find, for every request at once, the vector z that the last edited layer
should output at the subject's last token for the model to say o*; then, layer by layer over the edited layers,
spread the remaining residual z − h over the layers left and solve for the weight update that maps the requests'
keys to it. MEMIT's update is regularised by the keys' second moment C₀ over a text corpus; AlphaEdit projects it
onto the null space of C₀, so that the outputs on preserved keys do not move, and keeps a cache of earlier batches'
keys so sequential batches do not overwrite each other. Notes and settings: ../shared/ALGORITHMS.md, hparams/.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..architectures import Architecture, architecture_of
from .base import EditRequest, Intervention, MethodError, register
from .edit_algebra import alphaedit_update, memit_update, nullspace_projector
from .locate import (
    add_at_positions,
    capture_inputs,
    capture_layer_output,
    encode_with_fact_token,
    pad_id_of,
)

_TRAILING_PUNCTUATION = ".,;:!?'\")]}"


def stats_cache_root() -> Path:
    return Path(os.environ.get("KS_STATS_CACHE", Path.home() / ".cache" / "knowledgesmith" / "stats"))


# -- corpus and key statistics ---------------------------------------------------------------------------------------


def corpus_texts(setting: str, samples: int, seed: int, benchmark_mcq: pl.DataFrame | None,
                 probes: pl.DataFrame, frames: list[str] | None = None,
                 sample_model: Callable[[], list[str]] | None = None) -> tuple[list[str], str]:
    """Texts whose MLP keys define C₀, and a name for the report.

    `kg` (the offline default): the benchmark's own verbalised facts — every MCQ question with its gold answer, in
    each of `frames` (`corpus_frames`; e.g. the scoring frame too, so that C₀ holds the keys the model sees when it
    is asked).
    `model`: text the model itself writes from its start token (`sample_model()`), a general-text corpus that needs
    no download. A path: a local text file, one document per non-empty line. Otherwise a `datasets` id with a `text`
    column. Several joined by `+` (`model+kg`) are taken together, `samples` from each.
    """
    if "+" in setting and not Path(setting).is_file():
        parts = [corpus_texts(part, samples, seed, benchmark_mcq, probes, frames, sample_model)
                 for part in setting.split("+")]
        return [text for texts, _ in parts for text in texts], " + ".join(name for _, name in parts)
    if setting == "model":
        if sample_model is None:
            raise MethodError("corpus 'model' needs the model to sample from")
        texts = sample_model()
        name = f"model: {len(texts)} texts the model wrote from its start token"
    elif setting == "kg":
        frame = benchmark_mcq if benchmark_mcq is not None else probes
        texts = sorted(set(_verbalised(frame, frames)))
        name = f"kg: verbalised facts of the benchmark (question + gold answer; frames {frames or [PLAIN_FRAME]})"
    elif Path(setting).is_file():
        texts = [line.strip() for line in Path(setting).read_text(encoding="utf-8").splitlines() if line.strip()]
        name = f"file: {setting}"
    else:
        import datasets

        try:
            texts = [t for t in datasets.load_dataset(setting, split="train")["text"] if t.strip()]
        except Exception as err:  # datasets raises many types for "not found" and "offline"
            raise MethodError(f"corpus {setting!r}: not 'kg', not a file, and not loadable ({err})") from None
        name = f"datasets: {setting}"
    if not texts:
        raise MethodError(f"corpus {setting!r} holds no text")
    random.Random(seed).shuffle(texts)
    return texts[:samples], name


PLAIN_FRAME = "{question} {answer}"


def _verbalised(frame: pl.DataFrame, frames: list[str] | None = None) -> list[str]:
    """Question + gold answer per row and frame: the forms in which the `kg` corpus states a fact."""
    return [f.format(question=q, answer=choices[answer]) for f in (frames or [PLAIN_FRAME])
            for q, choices, answer in zip(frame["question"], frame["choices"], frame["answer"], strict=True)]


def edited_fact_texts(probes: pl.DataFrame, corpus: set[str], frames: list[str] | None = None) -> list[str]:
    """The corpus texts that state what the edit changes: its Q+ probes (direct, reverse, multi-hop …) with the
    pre-edit answer. Q− probes stay in C₀: they are what the edit must preserve."""
    if "role" not in probes.columns:
        return []
    return sorted(set(_verbalised(probes.filter(pl.col("role") == "q_plus"), frames)) & corpus)


def subject_texts(subjects: set[str], corpus: list[str]) -> list[str]:
    """The corpus texts that mention one of the edited subjects (its label as a whole word): with
    `corpus_exclude_edited: subjects` they leave C₀ too, so that the subject's own key is not what the null space
    protects (every fact of a subject is read off the same key at its last token)."""
    if not subjects:
        return []
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(s)}(?!\w)" for s in sorted(subjects, key=len, reverse=True)))
    return sorted({text for text in corpus if pattern.search(text)})


def asked_texts(frame: pl.DataFrame, probes: pl.DataFrame, corpus: set[str],
                frames: list[str] | None = None) -> list[str]:
    """The corpus texts that ask a fact *of* an edited subject (rows of `frame` whose query subject is the subject of
    one of the edited facts, read off `probes`' direct rows): with `corpus_exclude_edited: asked` they leave C₀ too.
    Narrower than `subjects`: texts that merely name the subject (as another question's answer, say) stay."""
    if not {"query_subject_id", "query_kind"} <= set(frame.columns) \
            or not {"query_subject_id", "probe_type", "role"} <= set(probes.columns):
        raise MethodError("corpus_exclude_edited: asked needs the benchmark's query_* columns (a build of this "
                          "version)")
    edited = set(probes.filter((pl.col("probe_type") == "direct") & (pl.col("role") == "q_plus"))
                 ["query_subject_id"].drop_nulls().to_list())
    rows = frame.filter(pl.col("query_subject_id").is_in(sorted(edited)) & (pl.col("query_kind") == "object"))
    return sorted(set(_verbalised(rows, frames)) & corpus)


def _weights_fingerprint(arch: Architecture, model: Any, layers: list[int]) -> str:
    """Hash of the edited projections' weights: cached statistics are only reused for these very weights."""
    digest = hashlib.sha256()
    for layer in layers:
        weight = arch.mlp_out(model, layer).weight.detach().float().cpu().contiguous()
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()[:16]


def key_second_moments(model: Any, tokenizer: Any, arch: Architecture, layers: list[int], texts: list[str], *,
                       batch_size: int = 16, max_tokens: int = 128, progress: bool = False) -> tuple[dict, int]:
    """C₀ = E[k kᵀ] of the MLP projection's input over every real token of the texts, for all layers in one pass.

    Accumulated in float64 on the model's device (uncentred, as the methods define it); returns ({layer: C₀}, tokens).
    """
    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    modules = {layer: arch.mlp_out(model, layer) for layer in layers}
    sums: dict[int, Any] = {}
    tokens = 0
    keys: dict[int, Any] = {}
    pad = pad_id_of(tokenizer)
    with torch.no_grad(), capture_inputs(modules, keys):
        for start in tqdm(range(0, len(texts), batch_size), desc="key statistics", disable=not progress,
                          unit="batch"):
            rows = [tokenizer(t, truncation=True, max_length=max_tokens)["input_ids"]
                    for t in texts[start: start + batch_size]]
            width = max(map(len, rows))
            input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.bool)
            for i, ids in enumerate(rows):
                input_ids[i, : len(ids)] = torch.tensor(ids)
                mask[i, : len(ids)] = True
            model(input_ids=input_ids.to(device), attention_mask=mask.long().to(device))
            mask = mask.to(device)
            for layer in layers:
                k = keys[layer][mask].to(torch.float64)
                sums[layer] = sums.get(layer, 0) + k.T @ k
            tokens += int(mask.sum())
    return {layer: (sums[layer] / tokens).float() for layer in layers}, tokens


def sample_texts(model: Any, tokenizer: Any, count: int, tokens: int, seed: int, *, batch_size: int = 64,
                 progress: bool = False, **sampling: Any) -> list[str]:
    """`count` texts of `tokens` new tokens that the model writes from its start token, seeded (the caller's random
    state is left as it was), decoded and stripped; `sampling` goes to `generate` (do_sample is on). The editor's
    context prefixes and the `model` corpus of C₀ are both drawn here."""
    import torch
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    start = tokenizer.bos_token or tokenizer.eos_token
    start_ids = tokenizer(start, add_special_tokens=False, return_tensors="pt")["input_ids"] if start \
        else tokenizer("The", return_tensors="pt")["input_ids"]
    pad = pad_id_of(tokenizer)
    texts: list[str] = []
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for first in tqdm(range(0, count, batch_size), desc="sampling texts", disable=not progress, unit="batch"):
            starts = start_ids.to(device).repeat(min(batch_size, count - first), 1)
            with torch.no_grad():
                out = model.generate(starts, attention_mask=torch.ones_like(starts), do_sample=True,
                                     max_new_tokens=tokens, pad_token_id=pad, **sampling)
            texts.extend(tokenizer.decode(row, skip_special_tokens=True).strip()
                         for row in out[:, start_ids.shape[1]:])
    finally:
        torch.random.set_rng_state(generator_state)
    return texts


def logits_at(model: Any, input_ids: Any, attention: Any, rows: Any, positions: Any) -> Any:
    """Next-token logits at the given (row, position) pairs only, in float32.

    The vocabulary projection of every position is most of the memory and time of a forward pass over short prompts
    (70 rows × 25 tokens × 49k vocabulary is 86 M floats), and the z optimisation reads a few positions per row.
    """
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention).last_hidden_state
    return model.get_output_embeddings()(hidden[rows, positions]).float()


# -- the editor --------------------------------------------------------------------------------------------------------


@dataclass
class EditBatchReport:
    requests: int
    z_steps: int
    z_final_loss: float
    residual_norms: dict[int, float] = field(default_factory=dict)
    # how much of z − h the update realised at the last edited layer (bare prompt, fact token): 1 − |z − h₁|/|z − h₀|
    z_realised: float = 0.0
    z_stopped: int = 0  # requests whose NLL fell below early_stop_loss (their δ was frozen there)


class LocateThenEditor:
    """One model's editing state: C₀ and P per layer, and the cache of earlier batches' key moments."""

    def __init__(self, model: Any, tokenizer: Any, settings: dict[str, Any], project: bool) -> None:
        import torch

        self.model, self.tokenizer, self.settings, self.project = model, tokenizer, settings, project
        self.arch = architecture_of(model, settings.get("module"))
        count = self.arch.num_layers(model)
        self.layers = sorted(int(layer) % count for layer in settings["layers"])
        passes = settings.get("update_passes", 1)
        if not isinstance(passes, int) or isinstance(passes, bool) or passes < 1:
            raise MethodError(f"update_passes: {passes!r} is not a whole number ≥ 1")
        self.update_passes = passes
        self.device = next(model.parameters()).device
        self.pad = pad_id_of(tokenizer)
        self.moments: dict[int, Any] = {}
        self.projectors: dict[int, Any] = {}
        self.kept: dict[int, int] = {}
        self.previous: dict[int, Any] = {}
        self.report: dict[str, Any] = {"layers": self.layers, "batches": []}
        self.curve: list[dict[str, float]] = []
        dims = {layer: self._key_width(layer) for layer in self.layers}
        self.previous = {layer: torch.zeros((d, d), dtype=torch.float32, device=self.device)
                         for layer, d in dims.items()}

    def _key_width(self, layer: int) -> int:
        weight = self.arch.mlp_out(self.model, layer).weight
        return int(weight.shape[0] if self.arch.conv1d else weight.shape[1])

    # statistics, cached on disk keyed by weights, layer, corpus and sample count
    def prepare_statistics(self, texts: list[str], corpus_name: str, progress: bool) -> None:
        import torch

        corpus_hash = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        fingerprint = _weights_fingerprint(self.arch, self.model, self.layers)
        cache = stats_cache_root()
        missing = []
        tokens = None
        for layer in self.layers:
            path = cache / f"{fingerprint}-L{layer}-{corpus_hash}-{len(texts)}.pt"
            if path.exists():
                saved = torch.load(path, map_location=self.device)
                if saved["fingerprint"] != fingerprint or saved["moment"].shape[0] != self._key_width(layer):
                    raise MethodError(f"{path}: cached statistics do not match the model; delete the file")
                self.moments[layer] = saved["moment"].float()
                tokens = saved["tokens"]
            else:
                missing.append(layer)
        if missing:
            moments, tokens = key_second_moments(self.model, self.tokenizer, self.arch, missing, texts,
                                                 batch_size=int(self.settings["stats_batch_size"]), progress=progress)
            cache.mkdir(parents=True, exist_ok=True)
            for layer, moment in moments.items():
                path = cache / f"{fingerprint}-L{layer}-{corpus_hash}-{len(texts)}.pt"
                tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                torch.save({"moment": moment.cpu(), "fingerprint": fingerprint, "tokens": tokens,
                            "corpus": corpus_name}, tmp)
                os.replace(tmp, path)
                self.moments[layer] = moment
        self.report["corpus"] = {"name": corpus_name, "texts": len(texts), "tokens": tokens}
        self.corpus_tokens = int(tokens or 0)

    def sampled_corpus(self, progress: bool) -> list[str]:
        """The `model` corpus: `model_samples` texts of `model_sample_tokens` tokens sampled from the model, cached on
        disk beside the statistics (keyed by the edited weights and the sampling settings), as sampling them takes
        minutes on a CPU."""
        import json

        count, tokens = int(self.settings.get("model_samples", 2000)), int(self.settings.get("model_sample_tokens", 64))
        seed = int(self.settings.get("seed", 0))
        fingerprint = _weights_fingerprint(self.arch, self.model, self.layers)
        path = stats_cache_root() / "samples" / f"{fingerprint}-{count}x{tokens}-seed{seed}.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
        # plain sampling at temperature 1: the keys the model produces on its own distribution; empty texts dropped
        texts = [t for t in sample_texts(self.model, self.tokenizer, count, tokens, seed, progress=progress,
                                         top_k=0, top_p=1.0, temperature=1.0) if t]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
        return texts

    def exclude_texts(self, texts: list[str], progress: bool) -> None:
        """Take the keys of `texts` back out of C₀ (they were part of its corpus).

        C₀ stands for the knowledge to preserve. When the corpus is the benchmark itself it also verbalises the facts
        being edited; left in, it protects exactly the keys the edit must move (measured on SmolLM2: the projection
        and MEMIT's λC₀ term then cancel most of the update). C₀ is a token mean, so removing texts is exact:
        C₀′ = (T C₀ − t C₀⁽ᵉˣ⁾) / (T − t); the full corpus's cached statistics stay reusable for every request set.
        """
        if not texts:
            self.report["corpus"]["excluded_texts"] = 0
            return
        removed, tokens = key_second_moments(self.model, self.tokenizer, self.arch, self.layers, texts,
                                             batch_size=int(self.settings["stats_batch_size"]), progress=progress)
        total = self.corpus_tokens
        if tokens >= total:
            raise MethodError("the texts to exclude from C0's corpus are the whole corpus; "
                              "choose another corpus (--set corpus=FILE)")
        for layer in self.layers:
            moment = (self.moments[layer].double() * total - removed[layer].double() * tokens) / (total - tokens)
            self.moments[layer] = moment.float()
        self.corpus_tokens = total - tokens
        self.report["corpus"] |= {"excluded_texts": len(texts), "excluded_tokens": tokens,
                                  "tokens": self.corpus_tokens}

    def prepare_projectors(self) -> None:
        """AlphaEdit's null-space projector per layer, from C₀ as it stands (after any exclusion)."""
        if self.project:
            for layer in self.layers:
                projector, kept = nullspace_projector(self.moments[layer], float(self.settings["nullspace_threshold"]),
                                                      bool(self.settings["threshold_relative"]))
                self.projectors[layer] = projector.float()
                self.kept[layer] = kept
            self.report["nullspace_directions"] = {str(layer): self.kept[layer] for layer in self.layers}
            self.report["key_width"] = {str(layer): self._key_width(layer) for layer in self.layers}

    # prompts
    def _prefixes(self) -> list[str]:
        """Short context prefixes sampled from the model itself, fixed by the seed (the reference samples them too)."""
        count, length = int(self.settings["num_prefixes"]), int(self.settings["prefix_tokens"])
        if count <= 0:
            return [""]
        texts = sample_texts(self.model, self.tokenizer, count, length, int(self.settings.get("seed", 0)),
                             batch_size=count, top_k=5, min_new_tokens=length)
        cleaned = [text.replace("{", " ").replace("}", " ").strip() for text in texts]  # braces would be fields
        return ["", *(f"{text}. " if text else "" for text in cleaned)]

    def _contexts(self) -> list[str]:
        """Where the rewrite prompt is placed for the target vectors and the keys: every sampled prefix within every
        `rewrite_frames` entry (the bare prompt first: its row gives h at the fact token)."""
        frames = [str(f) for f in self.settings.get("rewrite_frames") or ["{prompt}"]]
        if frames[0] != "{prompt}":
            frames = ["{prompt}", *[f for f in frames if f != "{prompt}"]]
        for frame in frames:
            if "{prompt}" not in frame:
                raise MethodError(f"rewrite_frames entry {frame!r} does not contain {{prompt}}")
        prefixes = self._prefixes()
        return [prefix + frame for frame in frames for prefix in prefixes]

    @staticmethod
    def _filled(prompt: str, subject: str, context: str) -> tuple[str, int]:
        """The prompt with the subject filled in, placed in a context; and the character offset where the subject ends.

        A context is a prefix ("Some sampled text. ") or a frame around the prompt ("Question: {prompt}\nAnswer:").
        """
        if "{}" not in prompt:
            raise MethodError(f"prompt {prompt!r} does not mark the subject with {{}}")
        before, after = prompt.split("{}", 1)
        outer_before, outer_after = context.split("{prompt}", 1) if "{prompt}" in context else (context, "")
        text = outer_before + before + subject + after + outer_after
        # A subject's trailing punctuation merges with what follows it: "Washington, D.C." ends in the token "." in
        # "… D.C. is" but in ".?" when a question asks about it, so a key read at "." is never seen again. The fact
        # token is the subject's last token before trailing punctuation ("C"), the same in every phrasing.
        core = subject.rstrip(_TRAILING_PUNCTUATION) or subject
        return text, len(outer_before) + len(before) + len(core)

    def _encode(self, texts_and_ends: list[tuple[str, int]]) -> Any:
        texts = [t for t, _ in texts_and_ends]
        ends = [e for _, e in texts_and_ends]
        return encode_with_fact_token(self.tokenizer, texts, ends, self.settings["fact_token"], self.pad, self.device)

    # target vectors, all requests of a batch in one optimisation
    def target_vectors(self, requests: list[EditRequest], prefixes: list[str]) -> tuple[Any, Any, EditBatchReport]:
        import torch

        model, n = self.model, len(requests)
        last_layer = self.arch.layer(model, self.layers[-1])
        rewrite = [self._filled(r.prompt, r.subject, p) for r in requests for p in prefixes]
        owner = torch.tensor([i for i in range(n) for _ in prefixes], device=self.device)
        kl_rows = [self._filled("{} is a", r.subject, "") for r in requests]
        prompts = self._encode(rewrite + kl_rows)
        targets = [self.tokenizer(" " + r.target_new.strip(), add_special_tokens=False)["input_ids"]
                   for r in requests]
        if any(not t for t in targets):
            raise MethodError("a target_new encodes to no tokens")
        # rows = prompt tokens + target tokens (right padded); the loss reads the logits that predict the targets
        rows_ids, label_rows = [], []
        for row, length in enumerate(prompts.lengths[: len(rewrite)]):
            ids = prompts.input_ids[row, :length].tolist() + targets[int(owner[row])]
            rows_ids.append(ids)
            label_rows.append([-100] * length + targets[int(owner[row])])
        for row in range(len(rewrite), len(rewrite) + n):
            length = prompts.lengths[row]
            rows_ids.append(prompts.input_ids[row, :length].tolist())
            label_rows.append([-100] * length)
        width = max(map(len, rows_ids))
        input_ids = torch.full((len(rows_ids), width), self.pad, dtype=torch.long, device=self.device)
        attention = torch.zeros_like(input_ids)
        labels = torch.full_like(input_ids, -100)
        for i, (ids, lab) in enumerate(zip(rows_ids, label_rows, strict=True)):
            input_ids[i, : len(ids)] = torch.tensor(ids, device=self.device)
            attention[i, : len(ids)] = 1
            labels[i, : len(lab)] = torch.tensor(lab, device=self.device)
        positions = prompts.fact_positions
        which = torch.cat([owner, torch.arange(n, device=self.device)])
        kl_last = torch.tensor(prompts.lengths[len(rewrite):], device=self.device) - 1
        per = len(prefixes)
        lengths = attention.sum(dim=1)
        chunk_requests = max(1, int(self.settings.get("z_chunk_rows", 256)) // (per + 1))

        def rows_of(chunk: Any) -> tuple[Any, int, Any]:
            """The rows of requests `chunk` (their rewrite rows — request i's are i·per … i·per + per − 1 — then their
            KL rows), the width of the longest, and where the KL rows sit among them."""
            rows = torch.cat([(chunk[:, None] * per + torch.arange(per, device=self.device)).reshape(-1),
                              len(rewrite) + chunk])
            return rows, int(lengths[rows].max()), torch.arange(len(chunk) * per, len(rows), device=self.device)

        # the KL reference and h at the fact token (bare prompt), a chunk of requests at a time
        store: dict[str, Any] = {}
        base_kl_parts, h_parts = [], []
        with torch.no_grad(), capture_layer_output(last_layer, store):
            for first in range(0, n, chunk_requests):
                chunk = torch.arange(first, min(n, first + chunk_requests), device=self.device)
                rows, width, kl_rows = rows_of(chunk)
                base_kl_parts.append(torch.log_softmax(logits_at(model, input_ids[rows, :width],
                                                                 attention[rows, :width], kl_rows, kl_last[chunk]),
                                                       dim=-1))
                bare = torch.arange(0, len(chunk) * per, per, device=self.device)
                h_parts.append(store["out"][bare, positions[rows][bare]].float())
        base_kl = torch.cat(base_kl_parts)
        h_init = torch.cat(h_parts)  # (n, d): bare prompt, fact token

        hidden = h_init.shape[1]
        deltas = torch.zeros((n, hidden), device=self.device, requires_grad=True)
        optimiser = torch.optim.Adam([deltas], lr=float(self.settings["v_lr"]))
        limit = float(self.settings["clamp_norm_factor"]) * h_init.norm(dim=1)
        kl_factor, decay_factor = float(self.settings["kl_factor"]), float(self.settings["v_weight_decay"])

        def chunk_losses(chunk: Any) -> tuple[Any, Any]:
            """(NLL, loss) of the requests `chunk` (indices into the batch) from their rows only: their rewrite rows
            and their KL row, trimmed to the chunk's longest row. A request's loss reads only its own rows and δ."""
            rows, width, kl_rows = rows_of(chunk)
            chunk_labels = labels[rows, :width]
            target_rows, target_positions = (chunk_labels[:, 1:] != -100).nonzero(as_tuple=True)
            target_tokens = chunk_labels[target_rows, target_positions + 1]
            tokens_per_row = torch.zeros(len(rows), device=self.device).index_add(
                0, target_rows, torch.ones_like(target_rows, dtype=torch.float32))
            with add_at_positions(last_layer, torch.arange(len(rows), device=self.device), positions[rows], deltas,
                                  which[rows]):
                read = torch.log_softmax(logits_at(model, input_ids[rows, :width], attention[rows, :width],
                                                   torch.cat([target_rows, kl_rows]),
                                                   torch.cat([target_positions, kl_last[chunk]])), dim=-1)
            n_targets = len(target_rows)
            token_logp = read[:n_targets].gather(-1, target_tokens.unsqueeze(-1)).squeeze(-1)
            per_row = -torch.zeros(len(rows), device=self.device).index_add(0, target_rows, token_logp) \
                / tokens_per_row.clamp(min=1)
            nll = per_row[: len(chunk) * per].reshape(len(chunk), per).mean(dim=1)
            kl = torch.nn.functional.kl_div(read[n_targets:], base_kl[chunk], log_target=True,
                                            reduction="none").sum(-1)
            decay = (deltas[chunk].norm(dim=1) ** 2) / (h_init[chunk].norm(dim=1) ** 2)
            return nll, nll + kl_factor * kl + decay_factor * decay

        # Requests are optimised together (one Adam over all δ) but their rows go through the model a chunk at a
        # time, gradients accumulated: memory is bounded by `z_chunk_rows`, not by the batch (100 requests × 6
        # contexts of SmolLM2 took more than 24 GB in one pass). Requests below the stopping loss are left out.
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        steps = 0
        nll_per_request = torch.zeros(n, device=self.device)
        loss_per_request = torch.zeros(n, device=self.device)
        early_stop = float(self.settings["early_stop_loss"])
        params = [p for p in model.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        from tqdm.auto import tqdm

        bar = tqdm(range(int(self.settings["v_num_grad_steps"])), desc=f"target vectors ({n} requests)",
                   unit="step", disable=not bool(self.settings.get("progress", False)), leave=False)
        try:
            with torch.enable_grad():
                for step in bar:
                    optimiser.zero_grad(set_to_none=True)
                    active = (~done).nonzero(as_tuple=True)[0]
                    for first in range(0, len(active), chunk_requests):
                        chunk = active[first: first + chunk_requests]
                        nll, loss = chunk_losses(chunk)
                        nll_per_request[chunk] = nll.detach()
                        loss_per_request[chunk] = loss.detach()
                        still = nll.detach() >= early_stop
                        done[chunk] = ~still
                        if bool(still.any()):
                            (loss * still.float()).sum().backward()
                    self.curve.append({"step": step, "loss": float(loss_per_request.mean()),
                                       "nll": float(nll_per_request.mean())})
                    steps = step + 1
                    bar.set_postfix(nll=f"{self.curve[-1]['nll']:.3f}", done=f"{int(done.sum())}/{n}")
                    if bool(done.all()):
                        break
                    # requests already below the stopping loss keep their vector (Adam's momentum would move it)
                    kept = deltas.detach().clone()
                    optimiser.step()
                    with torch.no_grad():
                        norms = deltas.norm(dim=1).clamp(min=1e-12)
                        deltas.mul_(torch.clamp(limit / norms, max=1.0).unsqueeze(1))
                        deltas[done] = kept[done]
        finally:
            bar.close()
            for p in params:
                p.requires_grad_(True)
        z = (h_init + deltas.detach()).T  # (d, n)
        return z, prompts, EditBatchReport(n, steps, float(nll_per_request.detach().mean()), z_stopped=int(done.sum()))

    def keys_at(self, layer: int, requests: list[EditRequest], prefixes: list[str]) -> Any:
        """K at `layer`: the MLP projection's input at the fact token, averaged over the prefixes (d_in × n)."""
        import torch

        rows = [self._filled(r.prompt, r.subject, p) for r in requests for p in prefixes]
        encoded = self._encode(rows)
        store: dict[int, Any] = {}
        with torch.no_grad(), capture_inputs({layer: self.arch.mlp_out(self.model, layer)}, store):
            self.model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask)
        keys = store[layer][torch.arange(len(rows), device=self.device), encoded.fact_positions].float()
        return keys.view(len(requests), len(prefixes), -1).mean(1).T

    def current_outputs(self, requests: list[EditRequest]) -> Any:
        """h at the last edited layer's output, fact token of the bare prompt (d × n)."""
        import torch

        encoded = self._encode([self._filled(r.prompt, r.subject, "") for r in requests])
        store: dict[str, Any] = {}
        with torch.no_grad(), capture_layer_output(self.arch.layer(self.model, self.layers[-1]), store):
            self.model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask)
        return store["out"][torch.arange(len(requests), device=self.device), encoded.fact_positions].float().T

    def edit_batch(self, requests: list[EditRequest], prefixes: list[str]) -> EditBatchReport:
        import torch

        z, _, report = self.target_vectors(requests, prefixes)
        current = self.current_outputs(requests)
        gap_before = (z - current).norm(dim=0)
        # update_passes > 1 (not in the papers): the layer sweep again on the edited model, toward the same z, so that
        # the part of z − h the first sweep left unrealised is spread over the layers once more
        for sweep in range(self.update_passes):
            for position, layer in enumerate(self.layers):
                keys = self.keys_at(layer, requests, prefixes)
                residual = (z - current) / (len(self.layers) - position)
                if sweep == 0:
                    report.residual_norms[layer] = float(residual.norm(dim=0).mean())
                if self.project:
                    delta = alphaedit_update(residual, keys, self.projectors[layer], self.previous[layer],
                                             float(self.settings["l2"]))
                else:
                    delta = memit_update(residual, keys, self.moments[layer],
                                         float(self.settings["mom2_update_weight"]))
                weight = self.arch.mlp_out(self.model, layer).weight
                with torch.no_grad():
                    weight.add_((delta.T if self.arch.conv1d else delta).to(weight.dtype))
                current = self.current_outputs(requests)
        report.z_realised = float((1 - (z - current).norm(dim=0) / gap_before.clamp(min=1e-12)).mean())
        if self.project:  # later batches must not overwrite this one: remember its keys on the edited model
            for layer in self.layers:
                keys = self.keys_at(layer, requests, prefixes)
                self.previous[layer] = self.previous[layer] + keys @ keys.T
        return report


class _LocateThenEdit(Intervention):
    kind = "edit"
    project: bool = True
    benchmark_mcq: pl.DataFrame | None = None  # set by the harness: the corpus "kg" reads the whole benchmark

    def apply(self, model: Any, tokenizer: Any, requests: list[EditRequest], probes: pl.DataFrame,
              settings: dict[str, Any]) -> Any:
        editor = LocateThenEditor(model, tokenizer, settings, project=self.project)
        frames = settings.get("corpus_frames")  # None: the plain frame
        progress = bool(settings.get("progress", False))
        texts, name = corpus_texts(str(settings["corpus"]), int(settings["corpus_samples"]),
                                   int(settings.get("seed", 0)), self.benchmark_mcq, probes, frames,
                                   lambda: editor.sampled_corpus(progress))
        editor.prepare_statistics(texts, name, progress=progress)
        exclude = settings.get("corpus_exclude_edited", True)
        if exclude not in (True, False, "subjects", "asked"):
            raise MethodError(f"corpus_exclude_edited: {exclude!r} is not true, false, subjects or asked")
        if exclude:
            excluded = set(edited_fact_texts(probes, set(texts), frames))
            if exclude == "subjects":
                excluded |= set(subject_texts({r.subject for r in requests}, texts))
            elif exclude == "asked":
                source = self.benchmark_mcq if self.benchmark_mcq is not None else probes
                excluded |= set(asked_texts(source, probes, set(texts), frames))
            editor.exclude_texts(sorted(excluded), progress=progress)
        editor.prepare_projectors()
        prefixes = editor._contexts()
        size = int(settings["edit_batch_size"])
        from tqdm.auto import tqdm

        for start in tqdm(range(0, len(requests), size), desc=f"{self.name}: edit batches of {size}", unit="batch",
                          disable=not progress or len(requests) <= size):
            batch = editor.edit_batch(requests[start: start + size], prefixes)
            editor.report["batches"].append(batch.__dict__ | {"residual_norms": {
                str(k): v for k, v in batch.residual_norms.items()}})
        editor.report["prefixes"] = prefixes
        self.report = editor.report
        self.curve = editor.curve
        self.editor = editor
        return model


@register
class AlphaEdit(_LocateThenEdit):
    name = "alphaedit"
    description = "AlphaEdit: MEMIT's update projected onto the null space of preserved keys, sequential cache"
    project = True


@register
class Memit(_LocateThenEdit):
    name = "memit"
    description = "MEMIT: batched locate-then-edit of MLP projections, C0-regularised"
    project = False
