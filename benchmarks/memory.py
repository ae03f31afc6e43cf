"""Peak memory of one whole sync, in a fresh process: ``python -m benchmarks.memory URL``.

The parent writes a gateway response body to this process's stdin. Here it is parsed as the
fetcher parses it, normalized and loaded (sync_catalog) into the (empty) catalog at URL.
Prints one JSON object: RSS before and after each step, the peak of each step (sampled every
5 ms) and the kernel's high-water mark of the process's memory (``VmHWM``).

``VmHWM`` and not ``getrusage().ru_maxrss``: Linux carries the parent's high-water mark into
a child across fork/vfork + exec (``signal->maxrss``), so a child of a big parent reports the
parent's peak. ``ru_maxrss`` is printed too, with its value at start to show that.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil

MIB = 1024 * 1024


def high_water_mark_mib() -> float:
    """Peak RSS of this process's address space (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ru_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class PeakSampler:
    """Samples this process's RSS; ``mark`` closes a step and records its peak."""

    def __init__(self, interval: float = 0.005):
        self._process = psutil.Process()
        self._interval = interval
        self._peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.steps: dict[str, dict[str, float]] = {}
        self._step_started = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def mark(self, step: str) -> None:
        rss = self._process.memory_info().rss
        self.steps[step] = {
            "peak_mib": max(self._peak, rss) / MIB,
            "rss_after_mib": rss / MIB,
            "seconds": time.perf_counter() - self._step_started,
        }
        self._peak = rss
        self._step_started = time.perf_counter()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    ru_maxrss_at_start = ru_maxrss_mib()
    database_url = sys.argv[1]
    # Imports first: their memory is part of any real run, but not of "the sync".
    from model_sync.gateway import parse_model_list
    from model_sync.store.database import engine_for, sqlalchemy_url
    from model_sync.store.sync import SyncRequest, sync_catalog
    from model_sync.transform import normalize_models

    engine = engine_for(sqlalchemy_url(database_url))
    with engine.connect():
        pass
    sampler = PeakSampler().start()
    sampler.mark("imports + connection")
    body = sys.stdin.buffer.read()
    sampler.mark("response body read")
    models = parse_model_list(body, url="stdin", status=None)
    sampler.mark("JSON parse")
    catalog = normalize_models(models)
    sampler.mark("transform (normalize_models)")
    request = SyncRequest(frame=catalog.frame, source="vercel", run_id=f"bench-mem-{uuid.uuid4()}")
    result = sync_catalog(engine, request, datetime.now(UTC))
    sampler.mark("load (sync_catalog)")
    sampler.stop()
    print(
        json.dumps(
            {
                "models": len(models),
                "body_mib": len(body) / MIB,
                "created": result.counts.created,
                "steps": sampler.steps,
                "peak_rss_mib": high_water_mark_mib(),
                "ru_maxrss_mib": ru_maxrss_mib(),
                "ru_maxrss_at_start_mib": ru_maxrss_at_start,
            }
        )
    )


if __name__ == "__main__":
    main()
