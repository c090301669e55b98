"""The comparison as files: results.json (every figure), report.md, report.html, steps.png and parts.png."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from dataset_pipeline.compare import Comparison, RunnerSummary, Spread
from dataset_pipeline.run_parts import HOW_PARTS_ARE_MEASURED, PARTS

SECONDS_HEADER = "median [min–max] s"
PART_COLOURS = {"queue": "#9e9e9e", "start-up": "#ef8a62", "work": "#2166ac", "gaps": "#fddbc7", "to client": "#b2abd2"}


def summary_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The per-runner table, as header and rows of text."""
    header = ["runner", "succeeded", f"end-to-end {SECONDS_HEADER}", *comparison.steps, "overhead over direct"]
    header += ["peak RSS MB (idle)"]
    rows = []
    for summary in comparison.summaries:
        rows.append(
            [
                summary.runner,
                f"{summary.successes}/{summary.runs}",
                _spread(summary.end_to_end),
                *(_spread(summary.steps[name]) for name in comparison.steps),
                _overhead(summary),
                f"{summary.peak_rss_mb:.0f} ({summary.idle_rss_mb:.0f})" if summary.peak_rss_mb is not None else "–",
            ]
        )
    return header, rows


def parts_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """Where each runner's seconds went (medians), its step start-ups, and the isolation it ran with."""
    header = ["runner", "isolation", *(f"{part} s" for part in PARTS), "start-up per step (of which ours) s"]
    rows = []
    for summary in comparison.summaries:
        per_step = ", ".join(
            f"{step} {parts['startup']:.2f} ({parts['our_imports']:.2f})" for step, parts in summary.step_parts.items()
        )
        rows.append(
            [summary.runner, summary.isolation, *(_median(summary.parts.get(part)) for part in PARTS), per_step or "–"]
        )
    return header, rows


def console_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The per-runner medians, narrow enough for a terminal."""
    header = ["runner", "ok", "end-to-end", *comparison.steps, "overhead", "peak MB"]
    rows = []
    for summary in comparison.summaries:
        medians = [summary.end_to_end, *(summary.steps[name] for name in comparison.steps)]
        rows.append(
            [
                summary.runner,
                f"{summary.successes}/{summary.runs}",
                *(_median(spread) for spread in medians),
                _overhead(summary),
                f"{summary.peak_rss_mb:.0f}" if summary.peak_rss_mb is not None else "–",
            ]
        )
    return header, rows


SHADOWS_SAID = (
    "A shadowed step runs in Airflow's run, and Dagster runs it again beside, on the same inputs, in its own "
    "environment. Its work, timed by the same code on both sides, from the same runs:"
)


def shadow_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """Each shadowed step's work in Airflow and in Dagster's shadow, from the same runs, and how many matched."""
    header = ["runner", "step", f"Airflow's work {SECONDS_HEADER}", f"Dagster's work in the shadow {SECONDS_HEADER}"]
    header += ["outputs matched"]
    rows = [
        [summary.runner, step, _spread(shadow.airflow), _spread(shadow.dagster), f"{shadow.matched}/{shadow.runs}"]
        for summary in comparison.summaries
        for step, shadow in summary.shadows.items()
    ]
    return header, rows


def version_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["commit", "orchestrator", "run id", "rows", "rows added", "md5"]
    rows = [
        [v["commit"][:12], str(v["orchestrator"]), str(v["run_id"]), str(v["rows"]), str(v["rows_added"]), v["md5"]]
        for v in comparison.versions
    ]
    return header, rows


def write_report(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "results.json",
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
        "plot": out_dir / "steps.png",
        "parts_plot": out_dir / "parts.png",
    }
    paths["json"].write_text(json.dumps(comparison.to_dict(), indent=2) + "\n")
    paths["markdown"].write_text(markdown(comparison))
    plot(comparison, paths["plot"])
    plot_parts(comparison, paths["parts_plot"])
    paths["html"].write_text(html_page(comparison, paths["plot"].name, paths["parts_plot"].name))
    return paths


def markdown(comparison: Comparison) -> str:
    lines = [f"# Orchestrator comparison, {comparison.started}", "", _intro(comparison), ""]
    lines += _markdown_table(*summary_rows(comparison))
    lines += ["", "![time per step](steps.png)", "", "## Where the seconds went", "", HOW_PARTS_ARE_MEASURED, ""]
    lines += _markdown_table(*parts_rows(comparison))
    lines += ["", "![parts of each run](parts.png)", ""]
    if any(summary.shadows for summary in comparison.summaries):
        lines += ["## Shadowed steps", "", SHADOWS_SAID, "", *_markdown_table(*shadow_rows(comparison)), ""]
    lines += ["## Versions made", ""]
    lines += _markdown_table(*version_rows(comparison))
    lines += [f"\n{runner} skipped: {why}" for runner, why in comparison.skipped.items()]
    failures = [m for m in comparison.measures if not m.ok]
    lines += ["", "## Failed runs", ""] + [f"- {m.runner}: {m.error}" for m in failures] if failures else []
    return "\n".join(lines) + "\n"


def html_page(comparison: Comparison, plot_name: str, parts_plot_name: str) -> str:
    body = [
        f"<h1>Orchestrator comparison, {html.escape(comparison.started)}</h1>",
        f"<p>{html.escape(_intro(comparison))}</p>",
    ]
    body += [_html_table(*summary_rows(comparison)), f'<p><img src="{plot_name}" alt="time per step"></p>']
    body += ["<h2>Where the seconds went</h2>", f"<p>{html.escape(HOW_PARTS_ARE_MEASURED)}</p>"]
    body += [_html_table(*parts_rows(comparison)), f'<p><img src="{parts_plot_name}" alt="parts of each run"></p>']
    if any(summary.shadows for summary in comparison.summaries):
        body += ["<h2>Shadowed steps</h2>", f"<p>{html.escape(SHADOWS_SAID)}</p>"]
        body += [_html_table(*shadow_rows(comparison))]
    body += ["<h2>Versions made</h2>", _html_table(*version_rows(comparison))]
    body += [f"<p>{html.escape(runner)} skipped: {html.escape(why)}</p>" for runner, why in comparison.skipped.items()]
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    style += "td,th{border:1px solid #ccc;padding:4px 8px}"
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>Orchestrator comparison</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def plot(comparison: Comparison, target: Path) -> None:
    """Median time per step and end to end for each runner, with min–max whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [*comparison.steps, "end-to-end"]
    figure, axes = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(comparison.summaries), 1)
    for index, summary in enumerate(comparison.summaries):
        spreads = [summary.steps.get(name) for name in comparison.steps] + [summary.end_to_end]
        medians = [s.median if s else 0.0 for s in spreads]
        errors = [[s.median - s.low if s else 0.0 for s in spreads], [s.high - s.median if s else 0.0 for s in spreads]]
        positions = [group + index * width for group in range(len(groups))]
        axes.bar(positions, medians, width, yerr=errors, capsize=3, label=summary.runner)
    axes.set_xticks([group + width * (len(comparison.summaries) - 1) / 2 for group in range(len(groups))], groups)
    axes.set_ylabel("seconds (median, min–max)")
    axes.set_title(f"{comparison.runs_per_runner} run(s) per runner, {comparison.records} record(s) each")
    axes.legend()
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)


def plot_parts(comparison: Comparison, target: Path) -> None:
    """A stacked bar per runner: the median of each part of its runs, end to end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [summary.runner for summary in comparison.summaries]
    figure, axes = plt.subplots(figsize=(9, 0.6 * len(names) + 1.8))
    left = [0.0] * len(names)
    for part in PARTS:
        widths = [_value(summary.parts.get(part)) for summary in comparison.summaries]
        axes.barh(names, widths, left=left, color=PART_COLOURS[part], label=part)
        left = [start + width for start, width in zip(left, widths, strict=True)]
    axes.invert_yaxis()
    axes.set_xlabel("seconds (median of each part)")
    axes.set_title("Where each runner's seconds went")
    axes.legend(ncols=len(PARTS), loc="upper center", bbox_to_anchor=(0.5, -0.25 if names else -0.1), frameon=False)
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)


def _value(spread: Spread | None) -> float:
    return spread.median if spread is not None else 0.0


def _median(spread: Spread | None) -> str:
    return f"{spread.median:.2f}" if spread is not None else "–"


def _intro(comparison: Comparison) -> str:
    restored = comparison.cutover_restored
    cutover = (
        f" The cut-over runners set the cutover file for their runs; it was put back as it was "
        f"({', '.join(restored) or 'nothing'} in Dagster)."
        if restored is not None
        else ""
    )
    work = (
        f"{comparison.records} record(s) each"
        if comparison.params is None
        else "each with " + ", ".join(f"{name}={value!r}" for name, value in comparison.params.items())
    )
    return (
        f"Pipeline {comparison.pipeline}: {comparison.runs_per_runner} run(s) per runner, {work}, one after "
        "another on the local stack; steps as each orchestrator reports them, end-to-end from the request "
        "to the published version as the user sees it; memory is the peak resident memory of all of "
        "the runner's processes while it ran. Each runner's isolation is in the table of parts." + cutover
    )


def _spread(spread: Spread | None) -> str:
    return spread.text() if spread is not None else "–"


def _overhead(summary: RunnerSummary) -> str:
    if summary.overhead_seconds is None or summary.runner == "direct":
        return "–"
    return f"+{summary.overhead_seconds:.2f} s"


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _html_table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
