"""`ks-report RUN_OR_SWEEP …`: the figures and tables of one or several runs, as a self-contained report.html (every
plot embedded as a base64 PNG, no external asset), the PNGs themselves and a Markdown summary.

Everything is read from the run folders (metrics.json, predictions.parquet, geometry/k=K.json, config.json), so a
report can be redrawn at any time without a model. Several runs — or every method of a sweep folder — are drawn side
by side: one line per run in the figures against k, one panel per run in the per-run figures.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledgesmith.builder.atomic import atomic_write_bytes
from knowledgesmith.builder.errors import KsUserError

EXIT_USAGE = 2
SWEEP_FILE = "sweep.json"
# Headline figures per k: (metrics.json key, column title).
HEADLINE = (("accuracy_before", "acc before"), ("accuracy_after", "acc after"), ("efficacy", "efficacy"),
            ("rr", "RR"), ("ccr", "CCR"), ("conflict_rate", "conflict"))
FAILURE_MODES = (("under_forgetting_rr", "under-forgetting (RR)"), ("over_spreading_ccr", "over-spreading (CCR)"),
                 ("conflict_emergence", "conflict emergence"), ("knowledge_drift", "knowledge drift"),
                 ("hallucination_increase", "hallucination increase"))


class ReportError(KsUserError):
    """A folder cannot be reported on; one line for the user."""


@dataclass
class RunData:
    """One run folder, read."""

    label: str
    folder: Path
    config: dict
    metrics: dict
    geometry: dict[str, dict] = field(default_factory=dict)  # k → geometry/k=K.json
    sweep_drift: dict | None = None  # this run's slice of its sweep's normalised drift

    @property
    def kind(self) -> str:
        return self.metrics.get("kind", "edit")

    @property
    def ks(self) -> list[str]:
        return [str(k) for k in self.metrics.get("ks", [])]

    @property
    def mode(self) -> str:
        """The mode the figures are drawn for: the first choice-scoring mode of the run (cloze by default)."""
        modes = self.metrics.get("modes", [])
        return next((m for m in modes if m != "open"), modes[0] if modes else "cloze")

    def figures(self, k: str, mode: str | None = None) -> dict:
        return self.metrics["metrics"].get(mode or self.mode, {}).get(k, {})


# -- reading ---------------------------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ReportError(f"cannot read {path}: {err}") from None


def _read_run(folder: Path, label: str, sweep_drift: dict | None = None) -> RunData:
    if not (folder / "config.json").exists():
        raise ReportError(f"{folder} is not a ks-eval run or sweep folder (no config.json or sweep.json)")
    if not (folder / "metrics.json").exists():
        raise ReportError(f"{folder} has no metrics.json: the run has not finished (rerun ks-eval to resume it)")
    metrics = _read_json(folder / "metrics.json")
    geometry = {}
    for k in metrics.get("ks", []):
        path = folder / "geometry" / f"k={k}.json"
        if path.exists():
            geometry[str(k)] = _read_json(path)
    return RunData(label, folder, _read_json(folder / "config.json"), metrics, geometry, sweep_drift)


def load_runs(paths: list[Path]) -> list[RunData]:
    """Run folders and sweep folders (expanded into their methods' runs), labelled uniquely."""
    runs: list[RunData] = []
    for path in paths:
        if not path.is_dir():
            raise ReportError(f"{path}: no such folder")
        if (path / SWEEP_FILE).exists():
            sweep = _read_json(path / SWEEP_FILE)
            normalised = sweep.get("drift_normalised", {})
            for method, sub in sweep.get("runs", {}).items():
                drift = {name: by_method.get(method, {}) for name, by_method in normalised.items()}
                prefix = f"{path.name}/" if len(paths) > 1 else ""
                runs.append(_read_run(path / sub, f"{prefix}{method}", drift))
        else:
            runs.append(_read_run(path, f"{path.name} ({_read_json(path / 'config.json')['method']['name']})"
                                  if (path / "config.json").exists() else path.name))
    labels = [r.label for r in runs]
    for i, run in enumerate(runs):
        if labels.count(run.label) > 1:
            run.label = f"{run.label} #{i + 1}"
    return runs


# -- figures ---------------------------------------------------------------------------------------------------------

def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


@dataclass
class Figure:
    name: str  # file stem
    title: str
    caption: str
    png: bytes


def _save(plt: Any, fig: Any, name: str, title: str, caption: str) -> Figure:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return Figure(name, title, caption, buffer.getvalue())


def _value(x: Any) -> float:
    return float("nan") if x is None else float(x)


def _panels(plt: Any, n: int, width: float = 4.2, height: float = 3.2) -> tuple[Any, list[Any]]:
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def figure_accuracy(plt: Any, runs: list[RunData]) -> Figure:
    """Accuracy per probe type × level, before and after, at each run's largest k."""
    fig, axes = _panels(plt, len(runs), width=5.5, height=3.6)
    for ax, run in zip(axes, runs, strict=True):
        k = run.ks[-1]
        cells = run.figures(k).get("by_level_and_probe_type", {})
        labels, before, after = [], [], []
        for level in sorted(cells):
            for probe_type in sorted(cells[level]):
                labels.append(f"{level}\n{probe_type}")
                before.append(_value(cells[level][probe_type].get("accuracy_before")))
                after.append(_value(cells[level][probe_type].get("accuracy_after")))
        x = list(range(len(labels)))
        ax.bar([i - 0.2 for i in x], before, width=0.4, label="before", color="#9bb7d4")
        ax.bar([i + 0.2 for i in x], after, width=0.4, label="after", color="#c0504d")
        ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title(f"{run.label}, k = {k} ({run.mode})", fontsize=9)
        ax.legend(fontsize=7)
    return _save(plt, fig, "accuracy_by_level_probe_type", "Accuracy per probe type and level",
                 "Share of probes answered with the KG's truth, before and after the update, at each run's largest "
                 "k. Q+ types (direct, reverse, multi-hop, comparison, conflict) should move; contextual should not.")


def _x(run: RunData) -> list[float]:
    return [float(k) for k in run.ks]


def figure_metrics_vs_k(plt: Any, runs: list[RunData]) -> Figure:
    """Efficacy, RR, CCR and conflict rate against k, one line per run."""
    names = (("efficacy", "efficacy / propagation"), ("rr", "RR (residual retention)"),
             ("ccr", "CCR (collateral change)"), ("conflict_rate", "conflict rate"))
    fig, axes = _panels(plt, len(names), width=3.6, height=3.0)
    for ax, (key, title) in zip(axes, names, strict=True):
        for run in runs:
            ax.plot(_x(run), [_value(run.figures(k).get("overall", {}).get(key)) for k in run.ks], marker="o",
                    label=run.label)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("k (requests)")
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=7)
    return _save(plt, fig, "metrics_vs_k", "Efficacy, RR, CCR and conflict rate against k",
                 "Overall figures per method as the number of simultaneous requests grows (log axis). Efficacy is "
                 "defined for editing only; RR for probes the base model knew.")


def figure_ccr_by_distance(plt: Any, runs: list[RunData]) -> Figure:
    fig, axes = _panels(plt, len(runs), width=4.0)
    for ax, run in zip(axes, runs, strict=True):
        distances = sorted({d for k in run.ks for d in run.figures(k).get("ccr_by_distance", {})}, key=float)
        for d in distances:
            ax.plot(_x(run), [_value(run.figures(k).get("ccr_by_distance", {}).get(d, {}).get("ccr"))
                              for k in run.ks], marker="o", label=f"distance {d}")
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("k (requests)")
        ax.set_ylabel("CCR")
        ax.set_title(run.label, fontsize=9)
        ax.legend(fontsize=7)
    return _save(plt, fig, "ccr_by_distance", "Collateral change by graph distance",
                 "CCR of unrelated (Q−) probes split by their distance in hops from the edited subject.")


def figure_consistency(plt: Any, runs: list[RunData]) -> Figure:
    """Direct against reverse probes as k grows: the consistency collapse."""
    fig, axes = _panels(plt, len(runs), width=4.0)
    for ax, run in zip(axes, runs, strict=True):
        for probe_type, colour in (("direct", "#1f77b4"), ("reverse", "#d62728")):
            figures = [run.figures(k).get("by_probe_type", {}).get(probe_type, {}) for k in run.ks]
            ax.plot(_x(run), [_value(f.get("accuracy_after")) for f in figures], marker="o", color=colour,
                    label=f"{probe_type}: accuracy after")
            if run.kind == "edit":
                ax.plot(_x(run), [_value(f.get("efficacy")) for f in figures], marker="s", linestyle="--",
                        color=colour, label=f"{probe_type}: efficacy")
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("k (requests)")
        ax.set_title(run.label, fontsize=9)
        ax.legend(fontsize=7)
    return _save(plt, fig, "consistency_direct_reverse", "Direct versus reverse probes against k",
                 "A consistent update moves reverse questions with the direct ones; a gap that widens with k is the "
                 "consistency collapse. Solid: accuracy against the KG; dashed (editing): share reaching the target.")


def figure_drift(plt: Any, runs: list[RunData]) -> Figure:
    fig, axes = _panels(plt, 4, width=3.6, height=3.0)
    for run in runs:
        drift = run.metrics.get("drift", {})
        kl = drift.get("kl", {}).get(run.mode, {})
        axes[0].plot(_x(run), [_value(kl.get(k)) for k in run.ks], marker="o", label=run.label)
        normalised = (run.sweep_drift or {}).get(f"kl/{run.mode}") or drift.get("kl_normalised", {}).get(run.mode, {})
        axes[1].plot(_x(run), [_value(normalised.get(k)) for k in run.ks], marker="o", label=run.label)
        axes[2].plot(_x(run), [_value(drift.get("cka_mean", {}).get(k)) for k in run.ks], marker="o",
                     label=run.label)
        cka_norm = (run.sweep_drift or {}).get("cka_drift") or drift.get("cka_drift_normalised", {})
        axes[3].plot(_x(run), [_value(cka_norm.get(k)) for k in run.ks], marker="o", label=run.label)
    titles = ("KL(base ‖ updated), nats", "KL, log-min-max normalised", "linear CKA, mean over layers",
              "1 − CKA, log-min-max normalised")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("k (requests)")
        ax.set_title(title, fontsize=9)
    if any(v > 0 for line in axes[0].get_lines() for v in line.get_ydata() if v == v):
        axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    return _save(plt, fig, "drift_vs_k", "Representation drift against k",
                 "KL between the base and updated model's choice distributions, and linear CKA of last-token hidden "
                 "states, on a fixed probe set; normalised over the sweep (all methods and k on one scale).")


def figure_cka_layers(plt: Any, runs: list[RunData]) -> Figure:
    fig, axes = _panels(plt, len(runs), width=4.0)
    for ax, run in zip(axes, runs, strict=True):
        for k in run.ks:
            values = run.metrics.get("drift", {}).get("cka", {}).get(k)
            if values:
                ax.plot(range(len(values)), values, marker=".", label=f"k = {k}")
        ax.set_xlabel("layer")
        ax.set_ylabel("linear CKA, base vs updated")
        ax.set_title(run.label, fontsize=9)
        ax.legend(fontsize=7)
    return _save(plt, fig, "cka_by_layer", "CKA per layer",
                 "Where in depth the representation moved: 1 is unchanged.")


def figure_sv_spectra(plt: Any, runs: list[RunData]) -> Figure:
    fig, axes = _panels(plt, len(runs), width=4.0)
    colours = plt.get_cmap("viridis")
    for ax, run in zip(axes, runs, strict=True):
        k = run.ks[-1]
        matrices = run.geometry.get(k, {}).get("matrices", [])
        layers = [m["layer"] for m in matrices if m["layer"] is not None]
        top = max(layers, default=0) or 1
        for m in matrices:
            ax.plot(range(1, len(m["sigma_ratio"]) + 1), m["sigma_ratio"], linewidth=0.8, alpha=0.7,
                    color=colours((m["layer"] or 0) / top))
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
        ax.set_xlabel("singular value index i (top r)")
        ax.set_ylabel("σ′ᵢ / σᵢ")
        ax.set_title(f"{run.label}, k = {k}: {len(matrices)} matrices changed", fontsize=9)
    return _save(plt, fig, "sv_ratio_spectra", "Singular-value ratio spectra",
                 "Scaling of every changed weight matrix: the ratio of its top-r singular values after and before "
                 "(colour: layer, dark = early). 1 everywhere means no scaling.")


def figure_rotation(plt: Any, runs: list[RunData]) -> Figure:
    fig, axes = _panels(plt, len(runs), width=4.0)
    for ax, run in zip(axes, runs, strict=True):
        for k in run.ks:
            by_layer = run.geometry.get(k, {}).get("by_layer", {})
            layers = [layer for layer in by_layer if layer != "none"]
            ax.plot([int(layer) for layer in layers], [by_layer[layer]["left_angle_max"] for layer in layers],
                    marker="o", label=f"k = {k}, left")
            ax.plot([int(layer) for layer in layers], [by_layer[layer]["right_angle_max"] for layer in layers],
                    marker="x", linestyle="--", label=f"k = {k}, right")
        ax.set_xlabel("layer")
        ax.set_ylabel("largest principal angle (degrees)")
        ax.set_title(run.label, fontsize=9)
        ax.legend(fontsize=7)
    return _save(plt, fig, "rotation_angles", "Rotation of the top-r singular subspaces",
                 "Largest principal angle between the top-r left (output) and right (input) singular subspaces "
                 "before and after, per layer: editing writes low-rank directions, unlearning may rotate more.")


def figure_failure_modes(plt: Any, runs: list[RunData]) -> Figure:
    fig, axes = _panels(plt, 1, width=7.5, height=3.4)
    ax = axes[0]
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        k = run.ks[-1]
        overall = run.metrics.get("failure_modes", {}).get(k, {}).get("overall", {})
        ax.bar([j + i * width for j in range(len(FAILURE_MODES))],
               [_value(overall.get(key)) for key, _ in FAILURE_MODES], width=width, label=f"{run.label}, k = {k}")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(FAILURE_MODES))], [t for _, t in FAILURE_MODES],
                  rotation=20, ha="right")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.legend(fontsize=7)
    return _save(plt, fig, "failure_modes", "Failure modes of open-ended answers",
                 "On greedy short answers without options: RR (under-forgetting for unlearning), CCR "
                 "(over-spreading), conflict rate after − before, share of unrelated answers that changed "
                 "(knowledge drift), and the rise in answers that name no KG entity (hallucination).")


def draw_figures(runs: list[RunData]) -> list[Figure]:
    plt = _pyplot()
    figures = [figure_metrics_vs_k(plt, runs), figure_accuracy(plt, runs), figure_consistency(plt, runs),
               figure_ccr_by_distance(plt, runs)]
    if any(r.metrics.get("drift", {}).get("kl") for r in runs):
        figures.append(figure_drift(plt, runs))
    if any(any(r.metrics.get("drift", {}).get("cka", {}).values()) for r in runs):
        figures.append(figure_cka_layers(plt, runs))
    geometric = [r for r in runs if r.geometry]
    if geometric:
        figures += [figure_sv_spectra(plt, geometric), figure_rotation(plt, geometric)]
    with_open = [r for r in runs if r.metrics.get("failure_modes")]
    if with_open:
        figures.append(figure_failure_modes(plt, with_open))
    return figures


# -- tables ----------------------------------------------------------------------------------------------------------

@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "—"
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value != 0 else f"{value:.{digits}f}"
    return str(value)


def headline_table(runs: list[RunData]) -> Table:
    rows = []
    for run in runs:
        drift = run.metrics.get("drift", {})
        for k in run.ks:
            overall = run.figures(k).get("overall", {})
            rows.append([run.label, run.kind, k, run.mode, _fmt(overall.get("rows"))]
                        + [_fmt(overall.get(key)) for key, _ in HEADLINE]
                        + [_fmt(drift.get("kl", {}).get(run.mode, {}).get(k)),
                           _fmt(drift.get("cka_mean", {}).get(k)),
                           _fmt(run.metrics.get("apply_seconds", {}).get(k), 1)])
    return Table("headline", "Headline figures per run and k",
                 ["run", "kind", "k", "mode", "rows"] + [t for _, t in HEADLINE] + ["KL", "CKA", "apply s"], rows)


def accuracy_table(runs: list[RunData]) -> Table:
    rows = []
    for run in runs:
        k = run.ks[-1]
        cells = run.figures(k).get("by_level_and_probe_type", {})
        for level in sorted(cells):
            for probe_type in sorted(cells[level]):
                f = cells[level][probe_type]
                rows.append([run.label, k, level, probe_type, _fmt(f.get("rows")), _fmt(f.get("accuracy_before")),
                             _fmt(f.get("accuracy_after")), _fmt(f.get("efficacy")), _fmt(f.get("rr")),
                             _fmt(f.get("ccr"))])
    return Table("accuracy", "Accuracy per level and probe type (largest k)",
                 ["run", "k", "level", "probe type", "rows", "acc before", "acc after", "efficacy", "RR", "CCR"], rows)


def geometry_table(runs: list[RunData]) -> Table:
    rows = []
    for run in runs:
        for k, summary in run.metrics.get("geometry", {}).items():
            rows.append([run.label, k, _fmt(summary.get("matrices_changed")),
                         ", ".join(map(str, summary.get("layers_changed", []))) or "—",
                         _fmt(summary.get("sigma_ratio_min")), _fmt(summary.get("sigma_ratio_max")),
                         _fmt(summary.get("left_angle_max"), 2), _fmt(summary.get("right_angle_max"), 2),
                         _fmt(summary.get("relative_change_max"))])
    return Table("geometry", "Weight geometry per k",
                 ["run", "k", "matrices changed", "layers", "σ′/σ min", "σ′/σ max", "max left angle °",
                  "max right angle °", "max ‖ΔW‖/‖W‖"], rows)


def failure_table(runs: list[RunData]) -> Table:
    rows = []
    for run in runs:
        for k, block in run.metrics.get("failure_modes", {}).items():
            for level, figures in [("all", block.get("overall", {}))] + sorted(block.get("by_level", {}).items()):
                rows.append([run.label, k, level, _fmt(figures.get("rows"))]
                            + [_fmt(figures.get(key)) for key, _ in FAILURE_MODES]
                            + [_fmt(figures.get("hallucination_after"))])
    return Table("failure_modes", "Failure modes of open-ended answers, per method, k and level",
                 ["run", "k", "level", "rows"] + [t for _, t in FAILURE_MODES] + ["hallucination after"], rows)


def config_table(runs: list[RunData]) -> Table:
    rows = []
    for run in runs:
        c = run.config
        settings = c.get("method", {}).get("settings", {})
        rows.append([run.label, c.get("run", {}).get("model", "?"), c.get("method", {}).get("name", "?"),
                     str(c.get("method", {}).get("model_family")), c.get("data", {}).get("source", "?"),
                     ", ".join(c.get("run", {}).get("levels") or ["all"]),
                     ", ".join(map(str, c.get("run", {}).get("ks", []))), ", ".join(c.get("run", {}).get("modes", [])),
                     c.get("run", {}).get("backend", "?"), c.get("run", {}).get("dtype", "?"),
                     "; ".join(f"{key}={json.dumps(value)}" for key, value in settings.items()) or "—",
                     ", ".join(f"{key} {value}" for key, value in c.get("versions", {}).items())])
    return Table("config", "Configuration of each run",
                 ["run", "model", "method", "family", "data", "levels", "k", "modes", "backend", "dtype", "settings",
                  "versions"], rows)


def build_tables(runs: list[RunData]) -> list[Table]:
    tables = [headline_table(runs), accuracy_table(runs)]
    if any(r.metrics.get("geometry") for r in runs):
        tables.append(geometry_table(runs))
    if any(r.metrics.get("failure_modes") for r in runs):
        tables.append(failure_table(runs))
    tables.append(config_table(runs))
    return tables


# -- writing ---------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222; }
h1 { margin-bottom: 0.2em; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f0f3f7; } td:first-child, th:first-child { text-align: left; }
figure { margin: 0 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; max-width: 1000px; }
.settings td { text-align: left; max-width: 420px; word-break: break-word; }
"""


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
                   for row in table.rows)
    css = ' class="settings"' if table.name == "config" else ""
    return (f'<h2 id="{table.name}">{html.escape(table.title)}</h2>\n<table{css} data-table="{table.name}">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n")


def _html_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<h2 id="{figure.name}">{html.escape(figure.title)}</h2>\n<figure><img alt="{html.escape(figure.title)}" '
            f'src="data:image/png;base64,{data}"><figcaption>{html.escape(figure.caption)}</figcaption></figure>\n')


def render_html(runs: list[RunData], figures: list[Figure], tables: list[Table]) -> str:
    """One page: headline table and the figures against k first (the first screen), then the rest."""
    by_name = {t.name: t for t in tables}
    first, rest = figures[:1], figures[1:]
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>KnowledgeSmith report: "
             f"{html.escape(', '.join(r.label for r in runs))}</title><style>{_CSS}</style></head><body>\n",
             "<h1>KnowledgeSmith report</h1>\n",
             f'<p class="sub">{len(runs)} run(s): {html.escape(", ".join(r.label for r in runs))}; '
             f"figures for the {html.escape(runs[0].mode)} mode</p>\n",
             _html_table(by_name["headline"])]
    parts += [_html_figure(f) for f in first]
    parts += [_html_figure(f) for f in rest]
    parts += [_html_table(t) for t in tables if t.name != "headline"]
    parts.append("</body></html>\n")
    return "".join(parts)


def _md_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_markdown(runs: list[RunData], figures: list[Figure], tables: list[Table]) -> str:
    parts = [f"# KnowledgeSmith report\n\n{len(runs)} run(s): {', '.join(r.label for r in runs)}.\n"]
    for table in tables:
        if table.name == "config":
            continue
        parts.append(f"## {table.title}\n\n{_md_table(table)}\n")
    parts.append("## Figures\n")
    parts += [f"- [{f.title}]({f.name}.png): {f.caption}" for f in figures]
    parts.append("\nThe configuration of each run is in report.html and in each run's config.json.\n")
    return "\n".join(parts)


def write_report(paths: list[Path], out: Path) -> Path:
    """Read the runs, draw, and write report.html, report.md and the PNGs into `out`; returns report.html's path."""
    runs = load_runs(paths)
    figures = draw_figures(runs)
    tables = build_tables(runs)
    out.mkdir(parents=True, exist_ok=True)
    for figure in figures:
        atomic_write_bytes(out / f"{figure.name}.png", figure.png)
    atomic_write_bytes(out / "report.md", render_markdown(runs, figures, tables).encode())
    atomic_write_bytes(out / "report.html", render_html(runs, figures, tables).encode())
    return out / "report.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ks-report", description=__doc__.split("\n\n")[0],
        epilog="example: ks-report runs/sweep   (writes runs/sweep/report/report.html, report.md and the PNGs)")
    parser.add_argument("runs", nargs="+", type=Path, help="ks-eval run folder(s) or sweep folder(s)")
    parser.add_argument("--out", type=Path, help="output folder (default: RUN/report for one folder, "
                                                 "./ks-report for several)")
    args = parser.parse_args(argv)
    out = args.out or (args.runs[0] / "report" if len(args.runs) == 1 else Path("ks-report"))
    try:
        page = write_report(args.runs, out)
    except ImportError as err:
        print(f"ks-report: needs matplotlib (the [eval] extra): {err}", file=sys.stderr)
        return EXIT_USAGE
    except KsUserError as err:
        print(f"ks-report: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {page} (and report.md, {len(list(out.glob('*.png')))} PNGs in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
