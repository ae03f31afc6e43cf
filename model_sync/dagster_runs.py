"""Submitting the sync job to the Dagster instance, and reading what its run did.

The HTTP API does not execute the job itself: it submits a run to the instance in
``$DAGSTER_HOME`` exactly as ``dagster job launch`` does — the same code location (loaded from
the same ``workspace.yaml`` as the webserver and daemon), the same run queue, concurrency
limits and run launcher as scheduled runs. The location is served by a code server process this
module starts once, so the API process never imports the definitions itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from model_sync.assets import TABLE
from model_sync.schedules import SYNC_JOB_NAME

DEFINITIONS_MODULE = "model_sync.definitions"
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
COUNT_KEYS = (
    "total",
    "created",
    "updated",
    "unchanged",
    "deactivated",
    "reactivated",
    "failed",
    "stale",
)


class CodeLocationError(RuntimeError):
    """The code location could not be loaded (its error is in the message)."""


class RunSubmitter:
    """Loads the code location once and submits runs of the sync job to the instance."""

    def __init__(self, instance: DagsterInstance, workspace_file: Path | None = None):
        from dagster import __version__
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import ModuleTarget, WorkspaceFileTarget

        target = (
            WorkspaceFileTarget(paths=[str(workspace_file)])
            if workspace_file is not None
            else ModuleTarget(
                module_name=DEFINITIONS_MODULE,
                attribute=None,
                working_directory=None,
                location_name=DEFINITIONS_MODULE,
            )
        )
        self.instance = instance
        self._context = WorkspaceProcessContext(instance, target, version=__version__)
        workspace = self._context.create_request_context()
        names = workspace.code_location_names
        if len(names) != 1:
            self.close()
            raise CodeLocationError(f"expected one code location in the workspace, found {names}")
        self.location_name = names[0]
        if workspace.has_code_location_error(self.location_name):
            error = workspace.get_code_location_error(self.location_name)
            self.close()
            message = error.message.strip().splitlines()[-1] if error else "unknown error"
            raise CodeLocationError(f"the code location {self.location_name!r} failed: {message}")

    def close(self) -> None:
        self._context.__exit__(None, None, None)

    def submit(self, tags: Mapping[str, str]) -> str:
        """Create a run of the whole sync job and hand it to the instance's run coordinator
        (queued for the daemon, or launched at once without a queue). Returns its run id."""
        workspace = self._context.create_request_context()
        location = workspace.get_code_location(self.location_name)
        [repository] = location.get_repositories().values()
        remote_job = repository.get_full_job(SYNC_JOB_NAME)
        plan = location.get_execution_plan(
            remote_job, {}, step_keys_to_execute=None, known_state=None, instance=self.instance
        )
        run = self.instance.create_run(
            job_name=SYNC_JOB_NAME,
            run_id=None,
            run_config={},
            resolved_op_selection=None,
            step_keys_to_execute=plan.execution_plan_snapshot.step_keys_to_execute,
            op_selection=None,
            status=None,
            root_run_id=None,
            parent_run_id=None,
            tags={**remote_job.tags, **tags},
            job_snapshot=remote_job.job_snapshot,
            execution_plan_snapshot=plan.execution_plan_snapshot,
            parent_job_snapshot=remote_job.parent_job_snapshot,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
            asset_selection=None,
            asset_check_selection=None,
            asset_graph=repository.asset_graph,
        )
        return self.instance.submit_run(run.run_id, workspace).run_id


def running_sync(instance: DagsterInstance) -> str | None:
    """The id of a sync run that is queued or running (from any trigger), if there is one."""
    records = instance.get_run_records(
        RunsFilter(job_name=SYNC_JOB_NAME, statuses=IN_PROGRESS), limit=1
    )
    return records[0].dagster_run.run_id if records else None


@dataclass
class RunOutcome:
    """What a finished (or unfinished) sync run did, per source."""

    run_id: str
    status: DagsterRunStatus
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # (source step, failure kind, message) of each failed step
    failures: list[tuple[str, str | None, str]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def totals(self) -> dict[str, int]:
        return {key: sum(c.get(key, 0) for c in self.counts.values()) for key in COUNT_KEYS}


def run_outcome(instance: DagsterInstance, run_id: str) -> RunOutcome | None:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return None
    outcome = RunOutcome(run_id=run_id, status=run.status)
    if not outcome.finished:
        return outcome
    for record in instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.event_log_entry.dagster_event.event_specific_data.materialization
        path = materialization.asset_key.path
        if path[-1] == TABLE:
            metadata = materialization.metadata
            outcome.counts[path[0]] = {
                key: int(metadata[key].value) for key in COUNT_KEYS if key in metadata
            }
    for record in instance.get_records_for_run(
        run_id, of_type=DagsterEventType.STEP_FAILURE
    ).records:
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data
        kind: str | None = None
        message = "the sync failed"
        if data.user_failure_data is not None:
            message = data.user_failure_data.description or message
            kind_value: Any = data.user_failure_data.metadata.get("failure_kind")
            kind = kind_value.value if kind_value is not None else None
        elif data.error is not None:
            message = data.error.message.strip().splitlines()[0]
        outcome.failures.append((event.step_key or "", kind, message))
    return outcome
