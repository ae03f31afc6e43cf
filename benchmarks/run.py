"""Run every benchmark and write docs/performance.md and docs/performance.png.

    .venv/bin/python -m benchmarks.run                      # 1k, 10k, 100k models, 3 reps
    .venv/bin/python -m benchmarks.run --sizes 1000,10000 --reps 5 --skip-e2e

One database (``--database``, default ``model_sync_bench``) is created on the server of
``--admin-url``, used by every measurement, and dropped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import os
import pickle
import platform
import pstats
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text

from benchmarks import diagnostics, e2e, harness
from benchmarks.harness import SyncTiming, median
from benchmarks.synthetic import CatalogProfile, MutationSummary, describe, mutate, newest_fixture
from model_sync.transform import normalize_models

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_URL = os.environ.get(
    "MODEL_SYNC_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Scenario:
    """Several timed syncs of one kind at one size."""

    runs: list[SyncTiming] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [run.seconds for run in self.runs]

    def median_phases(self) -> dict[str, float]:
        if not self.runs:
            return {}
        return {
            phase: median([run.phases[phase] for run in self.runs]) for phase in harness.PHASE_ORDER
        }


@dataclass
class SizeResult:
    size: int
    mutations: dict[str, MutationSummary] = field(default_factory=dict)
    transform: list[float] = field(default_factory=list)
    skipped: int = 0
    scenarios: dict[str, Scenario] = field(
        default_factory=lambda: {name: Scenario() for name in ("load", "nochange", "changed")}
    )
    churn: Scenario = field(default_factory=Scenario)
    nochange_checks: list[dict[str, Any]] = field(default_factory=list)
    changed_checks: list[dict[str, Any]] = field(default_factory=list)
    floor_bytes: list[float] = field(default_factory=list)
    floor_durable: list[float] = field(default_factory=list)
    floor_temp: list[float] = field(default_factory=list)
    payload_mib: float = 0.0
    baseline_load: list[float] = field(default_factory=list)
    baseline_resync: list[float] = field(default_factory=list)
    baseline_equivalent: bool = False
    loads: list[float] = field(default_factory=list)


@dataclass
class Results:
    args: argparse.Namespace
    command: str
    started: datetime
    machine: dict[str, Any] = field(default_factory=dict)
    server: dict[str, str] = field(default_factory=dict)
    fixture: Path | None = None
    shape_real: dict[str, Any] = field(default_factory=dict)
    shape_synthetic: dict[str, Any] = field(default_factory=dict)
    sizes: dict[int, SizeResult] = field(default_factory=dict)
    memory: dict[str, Any] | None = None
    e2e: e2e.EndToEnd | None = None
    explain: list[diagnostics.ExplainedSync] = field(default_factory=list)
    code_before: str = ""
    code_after: str = ""
    transform_profile: list[tuple[str, float, float]] = field(default_factory=list)
    transform_profile_size: int = 0
    finished: datetime | None = None


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        facts["cpu"] = next(
            line.split(":", 1)[1].strip()
            for line in cpuinfo.splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        facts["cpu"] = platform.processor() or "unknown"
    try:
        meminfo = Path("/proc/meminfo").read_text().split()
        facts["memory_gib"] = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024 / 1024
    except (OSError, ValueError):
        facts["memory_gib"] = None
    try:
        facts["nproc_cmd"] = subprocess.run(
            ["nproc"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        facts["nproc_cmd"] = str(os.cpu_count())
    from importlib.metadata import version

    facts["packages"] = {
        name: version(name)
        for name in ("dagster", "pandas", "pydantic", "sqlalchemy", "psycopg", "numpy")
    }
    return facts


def code_fingerprint() -> str:
    """sha256 over model_sync's sources: which code was measured (and whether it changed)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "model_sync").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def other_active_backends(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
        ).scalar_one()


def timed_transform(raw: list[dict[str, Any]]) -> tuple[float, pd.DataFrame, int]:
    started = time.perf_counter()
    catalog = normalize_models(raw)
    return time.perf_counter() - started, catalog.frame, len(catalog.skipped)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def measure_size(
    engine: Engine,
    profiler: harness.StatementProfiler,
    profile: CatalogProfile,
    size: int,
    reps: int,
    args: argparse.Namespace,
    results: Results,
) -> SizeResult:
    result = SizeResult(size)
    raw = profile.generate(size, seed=args.seed)
    raw_changed, result.mutations["changed"] = mutate(
        raw, profile, price_share=args.change_share, seed=args.seed + 1
    )
    raw_churn, result.mutations["churn"] = mutate(
        raw_changed,
        profile,
        price_share=args.churn_price_share,
        remove_share=args.churn_remove_share,
        new_share=args.churn_new_share,
        seed=args.seed + 2,
    )
    if size == max(args.sizes):
        results.shape_synthetic = describe(raw)
    _, frame_changed, _ = timed_transform(raw_changed)
    _, frame_churn, _ = timed_transform(raw_churn)
    del raw_changed, raw_churn

    floor: harness.Floor | None = None
    for rep in range(reps):
        result.loads.append(os.getloadavg()[0])
        seconds, frame, result.skipped = timed_transform(raw)
        result.transform.append(seconds)

        harness.reset_catalog(engine)
        load = harness.run_sync(engine, frame, profiler)
        _check(load.result.counts.created == size, f"load created {load.result.counts}")
        result.scenarios["load"].runs.append(load)
        if floor is None:
            # The floor's COPY text: exactly the rows this load stored. (Reading them here
            # changes nothing for the next sync: row_versions reads every row anyway.)
            floor = harness.Floor(engine)
            floor.prepare()
            result.payload_mib = len(floor.payload) / 1024 / 1024

        stats_before, verified_before = harness.table_write_stats(engine, load.pids)
        versions_before = harness.row_versions(engine)
        nochange = harness.run_sync(engine, frame, profiler)
        counts = nochange.result.counts
        _check(
            counts.unchanged == size and counts.created + counts.updated == 0,
            f"no-change sync reported changes: {counts}",
        )
        stats_after, verified_after = harness.table_write_stats(engine, nochange.pids)
        versions_after = harness.row_versions(engine)
        result.scenarios["nochange"].runs.append(nochange)
        result.nochange_checks.append(
            {
                "rewritten_rows": harness.rewritten_rows(versions_before, versions_after),
                "stats_delta": {key: stats_after[key] - stats_before[key] for key in stats_after},
                "stats_verified": verified_before and verified_after,
                "versions_opened": nochange.result.versions_opened,
            }
        )

        changed = harness.run_sync(engine, frame_changed, profiler)
        expected = result.mutations["changed"].price_changed
        _check(
            changed.result.counts.updated == expected,
            f"5% sync updated {changed.result.counts.updated}, expected {expected}",
        )
        versions_changed = harness.row_versions(engine)
        result.scenarios["changed"].runs.append(changed)
        result.changed_checks.append(
            {
                "updated": changed.result.counts.updated,
                "rewritten_rows": harness.rewritten_rows(versions_after, versions_changed),
            }
        )
        del versions_before, versions_after, versions_changed

        churn = harness.run_sync(engine, frame_churn, profiler)
        result.churn.runs.append(churn)

        result.floor_bytes.append(floor.copy_bytes())
        result.floor_durable.append(floor.copy_bytes_durable())
        result.floor_temp.append(floor.copy_bytes_temp())

        if size <= args.baseline_max_n:
            harness.reset_catalog(engine)
            started = time.perf_counter()
            counts_load = harness.baseline_sync(engine, frame, f"bench-baseline-{rep}")
            result.baseline_load.append(time.perf_counter() - started)
            _check(counts_load["inserted"] == size, f"baseline load {counts_load}")
            started = time.perf_counter()
            counts_resync = harness.baseline_sync(engine, frame_changed, f"bench-baseline-{rep}")
            result.baseline_resync.append(time.perf_counter() - started)
            _check(counts_resync["updated"] == size, f"baseline re-sync {counts_resync}")
            if rep == 0:
                # The baseline must store exactly what sync_catalog stores: ours then finds
                # nothing to change.
                same = harness.run_sync(engine, frame_changed, profiler).result.counts
                _check(same.unchanged == size, f"baseline stored other values: {same}")
                result.baseline_equivalent = True

        result.loads.append(os.getloadavg()[0])
        log(
            f"N={size} rep {rep + 1}/{reps}: transform {result.transform[-1]:.2f} s, "
            f"load {load.seconds:.2f} s, no-change {nochange.seconds:.2f} s, "
            f"5% {changed.seconds:.2f} s, churn {churn.seconds:.2f} s, "
            f"floor {result.floor_bytes[-1]:.2f} s"
            + (
                f", baseline {result.baseline_load[-1]:.2f} / {result.baseline_resync[-1]:.2f} s"
                if result.baseline_load
                else ""
            )
            + f" (load avg {os.getloadavg()[0]:.2f}, "
            f"other active pg {other_active_backends(engine)})"
        )
    if floor is not None:
        floor.drop()
    return result


def measure_memory(database: harness.BenchDatabase, profile: CatalogProfile, size: int, seed: int):
    harness.reset_catalog(database.engine())
    body = json.dumps({"object": "list", "data": profile.generate(size, seed=seed)}).encode()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", database.url],
        input=body,
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"memory run failed:\n{completed.stderr.decode()[-4000:]}")
    return json.loads(completed.stdout.decode().strip().splitlines()[-1])


def profile_transform(raw: list[dict[str, Any]], top: int = 10) -> list[tuple[str, float, float]]:
    """(function, own seconds, share of the total) for the transform's hottest functions."""
    profiler = cProfile.Profile()
    profiler.enable()
    normalize_models(raw)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), values in stats.stats.items():  # type: ignore[attr-defined]
        own = values[2]
        where = Path(filename).name if filename != "~" else ""
        rows.append((f"{where}:{line}({function})" if where else function, own, own / total))
    rows.sort(key=lambda row: -row[1])
    return rows[:top]


def measure_explain(
    engine: Engine, profile: CatalogProfile, size: int, args: argparse.Namespace
) -> list[diagnostics.ExplainedSync]:
    raw = profile.generate(size, seed=args.seed)
    frame = normalize_models(raw).frame
    raw_changed, _ = mutate(raw, profile, price_share=args.change_share, seed=args.seed + 1)
    frame_changed = normalize_models(raw_changed).frame
    del raw, raw_changed
    harness.reset_catalog(engine)
    explained = [diagnostics.explain_sync(engine, frame, f"initial load of {size:,}")]
    from model_sync.store.sync import SyncRequest, sync_catalog

    sync_catalog(
        engine, SyncRequest(frame=frame, source="vercel", run_id="bench-explain"), datetime.now(UTC)
    )
    explained.append(diagnostics.explain_sync(engine, frame, f"no change, {size:,}"))
    explained.append(
        diagnostics.explain_sync(
            engine, frame_changed, f"{args.change_share:.0%} changed, {size:,}"
        )
    )
    return explained


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="catalog sizes (models)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per size")
    parser.add_argument(
        "--reps-largest", type=int, default=None, help="repetitions at the largest size"
    )
    parser.add_argument(
        "--baseline-max-n",
        type=int,
        default=10_000,
        help="run the per-model baseline up to this size; larger sizes are extrapolated",
    )
    parser.add_argument("--change-share", type=float, default=0.05)
    parser.add_argument("--churn-price-share", type=float, default=0.02)
    parser.add_argument("--churn-remove-share", type=float, default=0.01)
    parser.add_argument("--churn-new-share", type=float, default=0.01)
    parser.add_argument("--e2e-runs", type=int, default=3)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-explain", action="store_true", help="no EXPLAIN ANALYZE")
    parser.add_argument("--fixture", type=Path, default=None, help="real response to imitate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--database", default="model_sync_bench")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "performance.png")
    parser.add_argument(
        "--save-results", type=Path, default=None, help="also pickle the raw results here"
    )
    parser.add_argument(
        "--render-from",
        type=Path,
        default=None,
        help="measure nothing: re-render the document from results saved by --save-results",
    )
    args = parser.parse_args(argv)
    args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    return args


def render(results: Results, output: Path, plot: Path) -> None:
    from benchmarks import report

    output.parent.mkdir(parents=True, exist_ok=True)
    report.write_plot(results, plot)
    output.write_text(report.render(results, plot))
    log(f"wrote {output} and {plot}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render_from:
        with args.render_from.open("rb") as handle:
            render(pickle.load(handle), args.output, args.plot)
        return
    command = "python -m benchmarks.run" + (
        " " + shlex.join(argv if argv is not None else sys.argv[1:])
        if (argv if argv is not None else sys.argv[1:])
        else ""
    )
    results = Results(args=args, command=command, started=datetime.now(UTC))
    results.code_before = code_fingerprint()
    results.machine = machine_facts()
    results.machine["load_at_start"] = os.getloadavg()
    fixture = args.fixture or newest_fixture()
    results.fixture = fixture
    profile = CatalogProfile.from_fixture(fixture)
    results.shape_real = describe([json.loads(model) for model in profile.templates])

    database = harness.BenchDatabase(args.admin_url, args.database)
    engine = database.create()
    results.server = harness.server_facts(engine)
    profiler = harness.StatementProfiler(engine)
    largest = max(args.sizes)
    try:
        for size in args.sizes:
            reps = args.reps_largest if size == largest and args.reps_largest else args.reps
            log(f"N={size}: {reps} repetitions")
            results.sizes[size] = measure_size(engine, profiler, profile, size, reps, args, results)
        profile_size = min(10_000, largest)
        results.transform_profile_size = profile_size
        results.transform_profile = profile_transform(profile.generate(profile_size, seed=1))
        if not args.skip_explain:
            log(f"EXPLAIN ANALYZE at N={largest}")
            try:
                results.explain = measure_explain(engine, profile, largest, args)
            except AttributeError as error:  # sync_catalog's internals were renamed
                log(f"EXPLAIN skipped: {error}")
        if not args.skip_memory:
            log(f"peak memory at N={largest} (fresh process)")
            results.memory = measure_memory(database, profile, largest, args.seed)
            results.memory["load"] = os.getloadavg()[0]
        profiler.close()
        if not args.skip_e2e:
            results.e2e = e2e.measure(
                fixture, database.url, database.reset_schema, args.e2e_runs, log
            )
    finally:
        if not args.keep_database:
            database.drop()
    results.machine["load_at_end"] = os.getloadavg()
    results.code_after = code_fingerprint()
    if results.code_after != results.code_before:
        log("WARNING: model_sync changed while the benchmark ran; the numbers mix two versions")
    results.finished = datetime.now(UTC)
    if args.save_results:
        with args.save_results.open("wb") as handle:
            pickle.dump(results, handle)
    render(results, args.output, args.plot)


if __name__ == "__main__":
    main()
