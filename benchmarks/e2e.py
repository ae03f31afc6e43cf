"""End to end: the real CLI on the largest real fixture vs the same CLI on a trivial asset.

Both commands run with the same environment (no DAGSTER_HOME, so each run uses Dagster's
ephemeral instance; PYTHONPATH = the project root), interleaved, after one untimed warm-up
each. The full pipeline is timed in two states of the catalog database:

* ``fresh``: an empty, unmigrated database (migrations + 232 models created);
* ``steady``: the same response again (the daily case: nothing changed).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
FULL_MODULE = "model_sync.definitions"
TRIVIAL_MODULE = "benchmarks.trivial_definitions"
_STEP = re.compile(r'Finished execution of step "([^"]+)" in ([\d.]+)(ms|s)\b')
_SYNC = re.compile(r"AI Models sync completed successfully in (\d+) ms")


def command(module: str) -> list[str]:
    return [str(DAGSTER), "asset", "materialize", "-m", module, "--select", "*"]


@dataclass
class CliRun:
    seconds: float
    steps: dict[str, float]
    sync_ms: int | None


@dataclass
class EndToEnd:
    trivial: list[CliRun] = field(default_factory=list)
    fresh: list[CliRun] = field(default_factory=list)
    steady: list[CliRun] = field(default_factory=list)
    import_seconds: dict[str, float] = field(default_factory=dict)
    import_by_package: list[tuple[str, float]] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)


def environment(fixture: Path, database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["MODEL_SYNC_GATEWAY_URL"] = str(fixture)
    env["MODEL_SYNC_DATABASE_URL"] = database_url
    return env


def run_cli(module: str, env: dict[str, str]) -> CliRun:
    started = time.perf_counter()
    completed = subprocess.run(
        command(module), cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    output = completed.stdout + completed.stderr
    if completed.returncode != 0 or "RUN_SUCCESS" not in output:
        raise RuntimeError(f"{' '.join(command(module))} failed:\n{output[-4000:]}")
    steps = {
        name: float(value) / (1000 if unit == "ms" else 1)
        for name, value, unit in _STEP.findall(output)
    }
    sync = _SYNC.search(output)
    return CliRun(seconds, steps, int(sync.group(1)) if sync else None)


def _import_seconds(module: str, env: dict[str, str]) -> float:
    code = (
        "import time, dagster; started = time.perf_counter(); "
        f"import {module}; print(time.perf_counter() - started)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(completed.stdout.strip().splitlines()[-1])


def _import_profile(module: str, env: dict[str, str]) -> list[tuple[str, float]]:
    """Self import time by top-level package, for modules that ``import dagster`` does not
    already load."""

    def imported(code: str) -> dict[str, int]:
        completed = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        times: dict[str, int] = {}
        for line in completed.stderr.splitlines():
            if line.startswith("import time:") and "|" in line:
                self_us, _cumulative, name = line.removeprefix("import time:").split("|")
                if self_us.strip().isdigit():
                    times[name.strip()] = int(self_us)
        return times

    dagster_only = imported("import dagster")
    both = imported(f"import dagster; import {module}")
    by_package: dict[str, float] = {}
    for name, self_us in both.items():
        if name not in dagster_only:
            package = name.split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + self_us / 1e6
    return sorted(by_package.items(), key=lambda item: -item[1])


def measure(
    fixture: Path,
    database_url: str,
    reset_database: Callable[[], None],
    runs: int,
    log: Callable[[str], None],
) -> EndToEnd:
    env = environment(fixture, database_url)
    result = EndToEnd()
    reset_database()
    log("e2e: warm-up runs")
    run_cli(TRIVIAL_MODULE, env)
    run_cli(FULL_MODULE, env)
    for index in range(runs):
        result.loads.append(os.getloadavg()[0])
        result.trivial.append(run_cli(TRIVIAL_MODULE, env))
        reset_database()
        result.fresh.append(run_cli(FULL_MODULE, env))
        result.steady.append(run_cli(FULL_MODULE, env))
        log(
            f"e2e run {index + 1}/{runs}: trivial {result.trivial[-1].seconds:.2f} s, "
            f"fresh {result.fresh[-1].seconds:.2f} s, steady {result.steady[-1].seconds:.2f} s"
        )
    for module in (TRIVIAL_MODULE, FULL_MODULE):
        result.import_seconds[module] = statistics.median(
            _import_seconds(module, env) for _ in range(3)
        )
    result.import_by_package = _import_profile(FULL_MODULE, env)
    return result
