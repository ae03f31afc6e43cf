"""``docs/performance.md`` (and its plot) from the benchmark's results (``benchmarks.run``)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

PHASES = ("fetch", "archive", "transform", "load")
SCENARIOS = ("first load", "change sync", "no change")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _scenario(results: dict[str, Any], name: str, size_label: str) -> dict[str, Any]:
    sizes = {"real": min(s["size"] for s in results["end_to_end"])}
    for entry in results["end_to_end"]:
        is_real = entry["size"] == sizes["real"]
        if entry["name"] == name and (is_real == (size_label == "real")):
            return entry
    raise KeyError((name, size_label))


def round_ratios(results: dict[str, Any], name: str) -> list[float] | None:
    """40,000 models vs real for one scenario, round by round — when the sizes took turns
    round by round (a burst of load then skews one round, not one side)."""
    real, large = _scenario(results, name, "real"), _scenario(results, name, "40k")
    if not results.get("paired_rounds") or len(real["walls"]) != len(large["walls"]):
        return None
    return [b / a for a, b in zip(real["walls"], large["walls"], strict=True)]


def wall_ratio(results: dict[str, Any], name: str) -> float:
    """The median of the rounds' ratios, else (unpaired runs) the ratio of the medians."""
    rounds = round_ratios(results, name)
    if rounds:
        return statistics.median(rounds)
    return _scenario(results, name, "40k")["wall_s"] / _scenario(results, name, "real")["wall_s"]


def load_ratio(load: dict[str, Any]) -> float:
    """The load vs its floor: the median of the pairs' ratios (each floor is measured on the
    database its load just wrote), else the ratio of the medians."""
    if load.get("loads_s") and len(load["loads_s"]) == len(load.get("floors_s", ())):
        return statistics.median(
            a / b for a, b in zip(load["loads_s"], load["floors_s"], strict=True)
        )
    return load["load_s"] / load["floor_s"]


def targets(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name in ("first load", "change sync"):
        ratio = wall_ratio(results, name)
        rows.append([f"main command, 40,000 vs real, {name}", "≤ 2×", f"{ratio:.2f}×",
                     _verdict(ratio <= 2)])  # fmt: skip
    rate = results["transform"]["large_models_per_s"]
    rows.append(["transform, models/s (40,000 real-shaped)", "≥ 40,000", f"{rate:,.0f}",
                 _verdict(rate >= 40_000)])  # fmt: skip
    ratio = load_ratio(results["load"])
    rows.append(["load vs durable COPY of what it writes (40,000)", "≤ 1.5×", f"{ratio:.2f}×",
                 _verdict(ratio <= 1.5)])  # fmt: skip
    peak = results["memory_100k"]["peak_mib"]
    rows.append(["peak memory, main command at 100,000 models", "< 1 GiB", f"{peak:,.0f} MiB",
                 _verdict(peak < 1024)])  # fmt: skip
    ratio = wall_ratio(results, "no change")
    rows.append(
        ["no-change run, 40,000 vs real", "≤ 1.3×", f"{ratio:.2f}×", _verdict(ratio <= 1.3)]
    )
    if "dev" in results:
        dev = results["dev"]
        rows.append(["changed response → new price in ai_models (dagster dev, defaults)",
                     "≤ 90 s", f"{dev['change_latency_s']:.0f} s",
                     _verdict(dev["change_latency_s"] <= 90)])  # fmt: skip
        rows.append([f"runs launched over {dev['quiet_minutes']:g} min of unchanged polls", "0",
                     str(dev["quiet_runs"]), _verdict(dev["quiet_runs"] == 0)])  # fmt: skip
    return rows


def missed_reasons(results: dict[str, Any]) -> list[str]:
    """For each missed target: what the figures say about why, and what would meet it."""
    notes = []
    load = results["load"]
    load_vs_floor = load_ratio(load)
    for name in ("first load", "change sync"):
        real, large = _scenario(results, name, "real"), _scenario(results, name, "40k")
        ratio = wall_ratio(results, name)
        if ratio <= 2:
            continue
        work = sum(large["phases_s"].values())
        fixed = large["wall_s"] - work
        budget = 2 * real["wall_s"] - fixed
        of_medians = large["wall_s"] / real["wall_s"]
        rounds = round_ratios(results, name)
        if rounds and of_medians <= 2:
            notes.append(
                f"- **{name}, {ratio:.2f}× (target 2×).** The median of the rounds' ratios; "
                f"the medians of the runs give {of_medians:.2f}× ({large['wall_s']:.2f} s vs "
                f"{real['wall_s']:.2f} s), and single rounds ranged "
                f"{min(rounds):.2f}–{max(rounds):.2f}×: the miss is inside this machine's "
                "round-to-round spread. A margin would come from the transform (at the 40,000 "
                f"models/s target it would take 1.0 s instead of "
                f"{large['phases_s']['transform']:.1f} s) or the load (see below)."
            )
            continue
        notes.append(
            f"- **{name}, {ratio:.2f}× (target 2×).** Both runs pay the same fixed cost — "
            f"Dagster's process start-up, code loading, run events and checks: "
            f"{real['wall_s'] - sum(real['phases_s'].values()):.1f} s of the real run's "
            f"{real['wall_s']:.1f} s. The 40,000-model run adds {work:.1f} s of sync work "
            f"(transform {large['phases_s']['transform']:.1f} s, load "
            f"{large['phases_s']['load']:.1f} s, archive {large['phases_s']['archive']:.2f} s). "
            f"Meeting 2× needs that work within {budget:.1f} s, {work - budget:.1f} s less; "
            f"a transform at the 40,000 models/s target (1.0 s) would save "
            f"{large['phases_s']['transform'] - 1:.1f} s"
            + (
                " — enough on its own."
                if large["phases_s"]["transform"] - 1 >= work - budget
                else ", and the rest would have to come from the load "
                f"({load_vs_floor:.2f}× its floor here) or from Dagster's fixed cost, which both "
                "runs share."
            )
        )
    if load_vs_floor > 1.5:
        spread = (
            f" The floor alone measured {min(load['floors_s']):.2f}–"
            f"{max(load['floors_s']):.2f} s across the pairs of this run."
            if "floors_s" in load
            else ""
        )
        notes.append(
            f"- **load, {load_vs_floor:.2f}× its floor (target 1.5×).** The load writes the same "
            "rows as the floor and, on top, builds their COPY text in Python (one converter per "
            "column, about a quarter of the load's own time under cProfile at 40,000 models), "
            "runs the diff statements (fields, price points, versions), reads back the "
            "created ids for the run's report, and checks the foreign key from every new "
            "history version and change row to its run, row by row — about 0.18 s per 40,000 "
            "rows for each of the two (measured on a bare table pair), which the floor's "
            f"copies (made with LIKE, which copies no foreign key) do not pay.{spread} "
            "Meeting the target reliably would take having Postgres build the rows from one "
            "COPY of the served JSON (the encoding moved out of Python) and checking the "
            "run references once per statement instead of once per row — a different load "
            "and schema, not a tuning of this one."
        )
    rate = results["transform"]["large_models_per_s"]
    if rate < 40_000:
        notes.append(
            f"- **transform, {rate:,.0f} models/s (target 40,000).** Every model is validated "
            "by pydantic (one `model_validate` per model, so a bad model is set aside with "
            "its reason and a bad optional field costs only its columns), each price parsed "
            "to an exact `Decimal`, checked for storability (one orjson pass) and mapped to "
            "the catalog row, and every key path profiled for drift (with the cyclic garbage "
            "collector paused for the pass, which saved a fifth of its CPU). Under cProfile at "
            "40,000 models (inclusive, non-overlapping shares of `normalize`): mapping to the row "
            "≈ 37 %, pydantic validation with the price and date parsers ≈ 27 %, the drift "
            "profile ≈ 13 %, the storability check ≈ 5 %, the rest building the frame. On the "
            "real response replicated 20× it runs at "
            f"{results['transform']['real_models_per_s']:,.0f} models/s — but there every "
            "value repeats, so the per-text parse caches and per-shape profile do almost all "
            "the work; 40,000 models with distinct ids and prices is the honest figure. "
            "Reaching 40,000/s would take validating the whole list in one pydantic call "
            "(a `TypeAdapter(list[...])`, re-validating only the failing entries to keep "
            "per-model reasons) and building the frame's columns directly instead of a dict "
            "per row."
        )
    return notes


def end_to_end_table(results: dict[str, Any]) -> str:
    rows = []
    for name in SCENARIOS:
        for label in ("real", "40k"):
            entry = _scenario(results, name, label)
            phases = entry["phases_s"]
            rows.append(
                [
                    name,
                    f"{entry['size']:,}",
                    f"{entry['wall_s']:.2f} s",
                    *(f"{phases.get(p, 0):.2f} s" for p in PHASES),
                    f"{entry['peak_mib']:,.0f} MiB",
                    " / ".join(f"{w:.2f}" for w in entry["walls"]),
                ]
            )
    return _table(
        ["scenario", "models", "whole command (median)", *PHASES, "peak RSS", "runs (s)"], rows
    )


def write_plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.5))
    labels, bottoms = [], []
    bars: dict[str, list[float]] = {phase: [] for phase in (*PHASES, "start-up and rest")}
    for name in SCENARIOS:
        for label in ("real", "40k"):
            entry = _scenario(results, name, label)
            labels.append(f"{name}\n{label}")
            phases = entry["phases_s"]
            for phase in PHASES:
                bars[phase].append(phases.get(phase, 0))
            bars["start-up and rest"].append(entry["wall_s"] - sum(phases.values()))
    bottoms = [0.0] * len(labels)
    for phase, values in bars.items():
        axis.bar(labels, values, bottom=bottoms, label=phase)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    axis.set_ylabel("seconds (median)")
    axis.set_title("README main command, real catalog vs 40,000 models")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_report(results: dict[str, Any], markdown: Path, plot: Path) -> None:
    machine = results["machine"]
    load = results["load"]
    baseline = results["baseline"]
    archive = results["archive"]
    transform = results["transform"]
    parts = [
        "# Performance",
        "",
        f"Measured by `python -m benchmarks.run` on {results['when']} — {machine['cpus']} "
        f"CPUs, Python {machine['python']}, load average at start "
        f"{', '.join(f'{x:.2f}' for x in machine['load_average'])}. This machine is shared "
        "and noisy (±20 % run to run): read the ratios, measured side by side, more than the "
        "absolute times. The raw figures are in `docs/performance.json`.",
        "",
        "## Targets",
        "",
        _table(["what", "target", "measured", ""], targets(results)),
        "",
        *(
            ["### Missed targets: why, and what would meet them", "", *missed_reasons(results), ""]
            if missed_reasons(results)
            else []
        ),
        "## The README's main command end to end",
        "",
        "`dagster asset materialize -m model_sync.definitions --select '*'` as a process (a "
        "fresh database per repetition; `/usr/bin/time` for wall time and peak RSS), on the "
        "newest real Vercel response and on 40,000 models shaped like it "
        "(`benchmarks/synthetic.py`): a first load, then a change sync (5 % repriced, 1 % gone, "
        "1 % new), then the same response again (verified unchanged). The phases are the sync "
        "step's own (from its materialization); the rest is Dagster's process start-up, code "
        "loading, the run's events and the checks."
        + (
            " The sizes take turns round by round, and a ratio in the targets is the median of "
            "the rounds' own ratios (the runs column lists each round in order)."
            if results.get("paired_rounds")
            else ""
        ),
        "",
        end_to_end_table(results),
        "",
        "![main command, real vs 40,000 models](performance.png)",
        "",
        "Values pass between the three assets of a source in memory (one step, see README "
        '"Why one step per source"): no pickling of the response or the frame to disk and '
        "back.",
        "",
        "## Transform",
        "",
        f"`transform.normalize` in process: **{transform['large_models_per_s']:,.0f} models/s** "
        f"on 40,000 real-shaped models, {transform['real_models_per_s']:,.0f} models/s on the "
        "real response replicated 20×, with per-model and per-field validation, exact decimals, "
        "the schema profile and the skip-with-reason behaviour.",
        "",
        "## The load against its floor",
        "",
        f"The first load of 40,000 models wrote {load['load_s']:.2f} s (the sync's load phase: "
        "COPY of the new rows, their `created` change rows, their first history versions, the "
        f"run row) against **{load['floor_s']:.2f} s** for the durable COPY of the very same "
        "rows into same-shaped, indexed, logged copies of the three tables and a commit — the "
        f"fair floor: **{load_ratio(load):.2f}×**"
        + (
            f" (the median of {len(load['loads_s'])} pairs' ratios, each floor measured on the "
            "database its load had just written; times are the medians of each side; loads "
            f"{', '.join(f'{x:.2f}' for x in load['loads_s'])} s, floors "
            f"{', '.join(f'{x:.2f}' for x in load['floors_s'])} s)."
            if "loads_s" in load
            else "."
        ),
        "",
        "The old module's way for the same rows — one statement per model (look it up, insert "
        "it, its history version, its change row), in one transaction — as the baseline:",
        "",
        _table(
            ["models", "per-model loop", "ours (load phase, scaled)", "ours faster by"],
            [
                [
                    f"{int(size):,}",
                    f"{seconds:.2f} s",
                    f"{load['load_s'] * int(size) / 40_000:.2f} s",
                    f"{seconds / (load['load_s'] * int(size) / 40_000):.1f}×",
                ]
                for size, seconds in baseline.items()
            ],
        ),
        "",
        "## Memory",
        "",
        f"The main command's first load of 100,000 models: peak RSS "
        f"**{results['memory_100k']['peak_mib']:,.0f} MiB**, "
        f"{results['memory_100k']['wall_s']:.1f} s.",
        "",
        "## Freshness",
        "",
        f"One unchanged poll of the change sensor (conditional-less GET of the real response "
        f"from a server on loopback, sha256, one indexed read): **{results['poll']['cpu_ms']:.1f} "
        f"ms of CPU**, {results['poll']['wall_ms']:.1f} ms wall, in process.",
    ]
    if "dev" in results:
        dev = results["dev"]
        parts += [
            "",
            "`dagster dev` with the defaults (poll every 60 s) against a local gateway on "
            f"loopback: the first sync came {dev['first_sync_s']:.0f} s after start-up (the "
            "sensor's first poll of a never-synced source); after the response changed, the "
            f"new price was in `ai_models` **{dev['change_latency_s']:.0f} s** later; then "
            f"{dev['quiet_minutes']:g} minutes of unchanged responses: "
            f"{dev['quiet_polls']} polls, **{dev['quiet_runs']} runs launched**.",
        ]
    costs = results["costs"]
    parts += [
        "",
        "## Cost of usage",
        "",
        f"`ai_model_cost_or_error` over {costs['rows']:,} usage rows (round-robin over the real "
        "catalog, tiered models included) in one `SELECT sum(...)`: "
        f"**{costs['rows_per_s']:,.0f} rows/s**.",
        "",
        "## The response archive",
        "",
        "Each distinct body is stored once, zlib-compressed:",
        "",
        _table(
            ["response", "bytes", "stored (zlib)", "ratio"],
            [
                [name, f"{raw:,}", f"{stored:,}", f"{raw / stored:.1f}×"]
                for name, raw, stored in archive
            ],
        ),
        "",
        "A year at a daily sync of a source that changes daily costs 365 bodies; at a "
        "per-minute poll, the same 365 (unchanged polls store nothing) — see README "
        '"Archive of responses".',
        "",
    ]
    markdown.write_text("\n".join(parts))
    write_plot(results, plot)
