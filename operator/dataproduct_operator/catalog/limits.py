"""What the catalog bounds, so a hostile visitor or product cannot exhaust it (layer ``catalog``).

The catalog is unauthenticated by default and, as the chart runs it, shares the operator's
process and event loop. Everything a request or an object can make it spend is bounded here:

- a search: its length and number of words (longer ones answer 400, before any work);
- a page of the JSON API: a maximum size (larger ``limit`` values are clamped);
- CPU: a search and a whole-mesh export run in a worker thread and stop after a budget of that
  thread's CPU time (the search answers what it found so far, marked truncated; the export
  answers 503);
- whole-mesh exports at once per process (another one meanwhile answers 429 with Retry-After);
- memory per product: the store keeps text fields and lists shortened (:func:`bounded_object`),
  with a marker and the list of what was shortened, the full object one API call away;
- text shown: bidirectional control characters (which can make text read differently from what
  it is, "Trojan Source") are stripped (:func:`strip_bidi`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from dataproduct_operator.api.accessrequest import MAX_PURPOSE
from dataproduct_operator.api.dataproduct import MAX_IMAGE_LENGTH

MAX_QUERY_CHARS = 256
MAX_QUERY_WORDS = 16
MAX_PAGE_SIZE = 1000  # products in one answer of the JSON API; larger limits are clamped
TRUNCATED_MARK = "…"  # ends a text the store shortened

# Bidirectional embedding, override and isolate controls, and the implicit marks: U+202A-U+202E,
# U+2066-U+2069, U+200E, U+200F, U+061C.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

T = TypeVar("T")


@dataclass(frozen=True)
class CatalogLimits:
    """The limits one catalog process applies; see the module docstring."""

    search_cpu_seconds: float = 0.2
    export_cpu_seconds: float = 10.0
    mesh_exports_at_once: int = 1
    retry_after_seconds: int = 5  # told to a whole-mesh export refused while others run


def strip_bidi(text: str) -> str:
    """``text`` without bidirectional control characters."""
    return BIDI_CONTROLS.sub("", text)


# -- searches --------------------------------------------------------------------------------


class QueryTooLongError(ValueError):
    """A search the catalog refuses before doing any work."""


def search_words(query: str) -> list[str]:
    """The lower-case words of a search, or :class:`QueryTooLongError` saying what to change."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLongError(
            f"The search has {len(query)} characters; at most {MAX_QUERY_CHARS} are allowed"
        )
    words = query.lower().split()
    if len(words) > MAX_QUERY_WORDS:
        raise QueryTooLongError(
            f"The search has {len(words)} words; at most {MAX_QUERY_WORDS} are allowed"
        )
    return words


# -- CPU -------------------------------------------------------------------------------------


class CpuBudgetSpentError(Exception):
    """The worker thread spent its CPU budget."""


@dataclass
class CpuBudget:
    """A budget of the calling thread's CPU time, started when made (in the worker thread:
    ``time.thread_time`` counts only the thread that asks)."""

    seconds: float

    def __post_init__(self) -> None:
        self._started = time.thread_time()

    def spent(self) -> bool:
        return time.thread_time() - self._started > self.seconds

    def metered(self, items: Iterable[T], *, every: int = 16) -> Iterator[T]:
        """``items``, raising :class:`CpuBudgetSpentError` once the budget is spent (looked at
        every ``every`` items: reading the clock is a system call)."""
        for index, item in enumerate(items):
            if index % every == 0 and self.spent():
                raise CpuBudgetSpentError(f"stopped after {self.seconds:g}s of CPU time")
            yield item


# -- memory per product ----------------------------------------------------------------------

MAX_TEXT = 256  # any string the store keeps (Kubernetes names, at most 253, stay whole)
MAX_DESCRIPTION = 1024  # a product's or a port's description
MAX_COLUMN_DESCRIPTION = 160
MAX_LIST = 32  # items of any list or map the store keeps
MAX_COLUMNS = 100  # columns kept over all ports of a product
# An image reference must stay whole to stay one (the model checks its grammar); the CRD
# bounds it already.
# An access request's purpose is kept whole (the API server bounds it): the owners read it all.
TEXT_LIMITS = {"description": MAX_DESCRIPTION, "image": MAX_IMAGE_LENGTH, "purpose": MAX_PURPOSE}
_INDEX = re.compile(r"\[\d+\]")
# Of a pipeline the catalog shows its name, image and schedule, and exports never show its
# command, arguments, environment or resources: the store does not keep them.
DROPPED_PIPELINE_FIELDS = ("command", "args", "env", "resources")


@dataclass
class _Bounding:
    truncated: list[str]
    columns_left: int = MAX_COLUMNS

    def shortened(self, path: str) -> None:
        """Note ``path`` as shortened, once per field of every item alike."""
        field = _INDEX.sub("[]", path)
        if field not in self.truncated:
            self.truncated.append(field)

    def text(self, value: str, path: str, limit: int) -> str:
        value = strip_bidi(value)
        if len(value) <= limit:
            return value
        self.shortened(path)
        return value[: limit - len(TRUNCATED_MARK)] + TRUNCATED_MARK

    def items(self, values: list[Any], path: str, limit: int) -> list[Any]:
        if len(values) > limit:
            self.shortened(path)
        return values[:limit]

    def walk(self, value: Any, path: str, key: str = "") -> Any:
        if isinstance(value, str):
            limit = TEXT_LIMITS.get(key, MAX_TEXT)
            if key == "description" and ".schema[" in path:
                limit = MAX_COLUMN_DESCRIPTION
            return self.text(value, path, limit)
        if isinstance(value, dict):
            kept = {
                self.text(k, path, MAX_TEXT): self.walk(v, f"{path}.{k}", k)
                for k, v in list(value.items())[:MAX_LIST]
            }
            if len(value) > MAX_LIST:
                self.shortened(path)
            return kept
        if isinstance(value, list):
            limit = MAX_LIST
            if key == "schema":
                limit = self.columns_left
                self.columns_left -= min(len(value), limit)
            return [
                self.walk(item, f"{path}[{index}]")
                for index, item in enumerate(self.items(value, path, limit))
            ]
        return value


def bounded_object(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A DataProduct or DataDomain (``metadata``, ``spec``, ``status``) as the catalog keeps
    it, and the paths of what was shortened: strings at most :data:`MAX_TEXT` characters
    (descriptions :data:`MAX_DESCRIPTION`, column descriptions :data:`MAX_COLUMN_DESCRIPTION`,
    access requests' purposes their own bound)
    ending in :data:`TRUNCATED_MARK`, lists and maps at most :data:`MAX_LIST` items, at most
    :data:`MAX_COLUMNS` columns over all ports, pipelines without their command, arguments,
    environment and resources; bidirectional controls stripped everywhere."""
    bounding = _Bounding([])
    spec = dict(obj.get("spec") or {})
    if isinstance(spec.get("pipelines"), list):
        spec["pipelines"] = [
            {k: v for k, v in p.items() if k not in DROPPED_PIPELINE_FIELDS}
            if isinstance(p, dict)
            else p
            for p in spec["pipelines"]
        ]
    kept = {
        "metadata": obj.get("metadata") or {},  # names are the API server's: bounded already
        "spec": bounding.walk(spec, "spec"),
        "status": bounding.walk(obj.get("status") or {}, "status"),
    }
    return kept, bounding.truncated
