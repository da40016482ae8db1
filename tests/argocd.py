"""Runs the chart's Argo CD health checks (Lua) on an object, as Argo CD does: the script with a
global ``obj`` (the object as JSON decodes it), its result ``hs`` read back. Lua 5.1, the
language of Argo CD's gopher-lua."""

from __future__ import annotations

from typing import Any

from lupa import lua51

from dataproduct_operator.manifests.argocd import build_health_checks

SCRIPTS = {check.kind: check.script for check in build_health_checks()}


def _to_lua(runtime: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of the object's kind's health check."""
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(SCRIPTS[obj["kind"]])
    return str(result["status"]), str(result["message"])
