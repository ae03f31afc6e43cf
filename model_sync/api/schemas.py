"""The API's request and response bodies (they are also its OpenAPI schema)."""

from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

# Records one POST /api/v1/costs prices; a larger batch is refused as a whole (422).
MAX_COST_RECORDS = 1000


class SyncCountsOut(BaseModel):
    total: int
    created: int
    updated: int
    unchanged: int
    deactivated: int
    reactivated: int
    failed: int
    stale: int = 0
    runId: str
    sources: dict[str, dict[str, int]] = Field(default_factory=dict)


class SyncResponse(BaseModel):
    success: bool
    result: SyncCountsOut | None = None
    error: str | None = None
    runId: str | None = None


class StatsResponse(BaseModel):
    totalModels: int
    activeModels: int
    inactiveModels: int
    lastSyncDate: str | None = Field(description="Last successful sync, ISO-8601 UTC, or null.")


class ErrorResponse(BaseModel):
    error: str


class UsageRecord(BaseModel):
    """One request's usage: which model (source + model_id, or canonical_model_id), when it
    ran (default: now), and its meters (absent = 0; see README "Cost of any usage")."""

    source: str | None = Field(default=None, max_length=200)
    model_id: str | None = Field(default=None, max_length=1000)
    canonical_model_id: str | None = Field(default=None, max_length=1000)
    at: AwareDatetime | None = None
    usage: dict[str, Any] = Field(default_factory=dict)


class CostsRequest(BaseModel):
    records: list[UsageRecord] = Field(min_length=1, max_length=MAX_COST_RECORDS)


class CostOut(BaseModel):
    total: str = Field(description="USD, exact decimal text")
    meters: dict[str, str]
    version_id: int
    unpriced: list[str]


class CostResult(BaseModel):
    index: int
    source: str | None = None
    model_id: str | None = None
    cost: CostOut | None = None
    error: str | None = None


class CostsResponse(BaseModel):
    results: list[CostResult]


class HealthResponse(BaseModel):
    status: str
