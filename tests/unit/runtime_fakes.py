"""Fakes for the runtime's unit tests: an API server that answers from memory."""

from __future__ import annotations

import copy
from typing import Any

from dataproduct_operator.k8s.rest import ApiError


class FakeApi:
    """Enough of KubeClient for the runtime: get, merge_patch, request (POST/PUT/GET) over
    objects kept by path, with resourceVersions, preconditions and injectable failures."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 100
        self.calls: list[tuple[str, str]] = []
        self.fail_next: list[BaseException] = []  # raised by the next calls, in order
        self.down = False  # every call fails as if the API server were unreachable
        self.events: list[dict[str, Any]] = []

    def put_object(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.objects[path] = stored
        return copy.deepcopy(stored)

    def _enter(self, method: str, path: str) -> None:
        self.calls.append((method, path))
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        if self.fail_next:
            raise self.fail_next.pop(0)

    async def get(self, path: str, *, not_older_than: str | None = None) -> dict[str, Any] | None:
        self._enter("GET", path)
        found = self.objects.get(path)
        return None if found is None else copy.deepcopy(found)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self._enter("PATCH", path)
        target = path.removesuffix("/status")
        if target not in self.objects:
            raise ApiError(404, "NotFound", f"{target} not found")
        current = copy.deepcopy(self.objects[target])
        _merge(current, body)
        return self.put_object(target, current)

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self._enter(method, path)
        if path.endswith("/events"):
            self.events.append(body)
            return body
        if method == "POST":
            name = body["metadata"]["name"]
            if f"{path}/{name}" in self.objects:
                raise ApiError(409, "AlreadyExists", f"{name} exists")
            return self.put_object(f"{path}/{name}", body)
        if method == "PUT":
            current = self.objects.get(path)
            if current is None:
                raise ApiError(404, "NotFound", f"{path} not found")
            wanted = body["metadata"].get("resourceVersion")
            if wanted != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "the object has been modified")
            return self.put_object(path, body)
        raise AssertionError(f"unexpected {method} {path}")

    def warnings(self) -> list[tuple[str, str]]:
        return [(e["reason"], e["message"]) for e in self.events if e["type"] == "Warning"]


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
