"""The words of a run that the runner shares with the API: how a run writes its port, how
much a failed check weighs, and how a file source is written (layer ``api``, plain enums).

They live apart from the models so the runner (``dpo pipeline run``, one process per run)
imports no pydantic model: its start is part of every run's latency. The API models use these
same enums (:mod:`dataproduct_operator.api.dataproduct`).
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    ERROR = "Error"  # a failing check stops the publish: the previous rows stay
    WARNING = "Warning"  # reported; the rows are published


class RunMode(StrEnum):
    REPLACE = "Replace"  # the port's rows become the transform's
    APPEND = "Append"  # the transform's rows are added
    MERGE = "Merge"  # inserted, or updated where the port's unique columns match


class FileFormat(StrEnum):
    """How a file source is written (the runner reads it with DuckDB's reader of that format)."""

    CSV = "csv"  # with a header line
    JSONL = "jsonl"  # one JSON object per line
    PARQUET = "parquet"
