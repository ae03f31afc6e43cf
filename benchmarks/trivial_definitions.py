"""Dagster's floor for the end-to-end comparison: one asset that returns 1.

``dagster asset materialize -m benchmarks.trivial_definitions --select '*'`` (with the project
root on PYTHONPATH) pays the same CLI start-up, code loading and run machinery as the real
pipeline, and nothing else. It uses the same in-process executor as ``model_sync.definitions``
(Dagster's default multiprocess executor would add a step subprocess to the floor).
"""

from dagster import Definitions, asset, in_process_executor


@asset
def trivial() -> int:
    return 1


defs = Definitions(assets=[trivial], executor=in_process_executor)
