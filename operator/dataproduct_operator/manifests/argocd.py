"""Argo CD health checks for the operator's kinds, in Lua (layer ``manifests``, pure).

Argo CD knows the health of built-in kinds only; for a custom resource it runs the Lua script
configured under ``resource.customizations.health.<group>_<kind>`` in ``argocd-cm``. The chart
ships these scripts in a ConfigMap (``argocd.healthChecks``) for users to merge into
``argocd-cm``; the tests run them with lupa against statuses the operator wrote.

Every kind: Progressing while the operator has not reported on the current generation (no
status, ``observedGeneration`` behind ``metadata.generation``, ``Ready`` absent or Unknown) or
while ``Ready`` is False for a reason that passes without anyone changing anything (a claim
binding, a store that is down, an error retried with backoff: :data:`TRANSIENT_REASONS`);
Degraded, with the reason and message, when ``Ready`` is False for any other reason (it needs a
change: a store that does not exist, a policy that does not compile); Healthy when ``Ready`` is
True. A DataProduct is Healthy only while its ``DataHealthy`` is not False: stale data or failed
checks or runs make it Degraded with that reason; ``DataHealthy`` Unknown (no data yet: a product
whose pipelines run on demand may never have any) leaves it Healthy and says so.

``Ready`` False names the first aspect that is not True (``StorageNotReady``); the scripts then
read that aspect's own reason, which says more (``ClaimsNotBound`` passes, ``StoreNotFound``
needs a change).
"""

from __future__ import annotations

from dataclasses import dataclass

from dataproduct_operator.api import datadomain, dataproduct, meshpolicy
from dataproduct_operator.api.conditions import DATA_HEALTHY, READY, Reason
from dataproduct_operator.api.kinds import GROUP

# Reasons of a Ready (or its aspect) that is False for a while and then passes by itself: the
# operator is getting there, or retries with backoff. Any other reason needs a change.
TRANSIENT_REASONS = frozenset(
    {
        Reason.RECONCILE_FAILED,
        Reason.APPLY_FAILED,
        Reason.STORE_UNAVAILABLE,
        Reason.CLAIMS_NOT_BOUND,
        Reason.CRONJOB_MISSING,
        Reason.ACCESS_MISSING,
        Reason.ALERT_RULES_MISSING,
        Reason.UPSTREAM_NOT_FOUND,
        # a claim of a file input, made by the same sync as the product, say
        Reason.CLAIM_NOT_FOUND,
        # also a product whose DataDomain has not onboarded the namespace yet
        Reason.NAMESPACE_NOT_IN_MESH,
        Reason.NAMESPACE_MISSING,
        Reason.NAMESPACE_TERMINATING,
        Reason.QUOTA_MISSING,
        Reason.QUOTA_PENDING,
        Reason.ADMISSION_POLICY_MISSING,
        Reason.TYPE_CHECK_PENDING,
    }
)


@dataclass(frozen=True)
class HealthCheck:
    """The health check of one kind: the argocd-cm key it goes under, and its script (and
    the script's name: kinds judged alike share one)."""

    kind: str
    key: str
    script: str
    script_name: str


def _lua_set(names: frozenset[str]) -> str:
    return "{" + ", ".join(f"[{_lua_string(name)}] = true" for name in sorted(names)) + "}"


def _lua_string(text: str) -> str:
    if not text.replace("-", "").replace(" ", "").replace(".", "").isalnum():
        raise ValueError(f"Not a plain name: {text!r}")  # never needs escaping in Lua
    return f'"{text}"'


# Lua 5.1, as Argo CD's gopher-lua runs it. `obj` is the object; the result is `hs`.
_SCRIPT = """\
local transient = {transient}
local hs = {{}}
local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end
-- A condition written by hand may lack a reason or a message: never an error here.
local function said(c)
  local reason = c.reason or c.type
  if c.message ~= nil and c.message ~= "" then
    return reason .. ": " .. c.message
  end
  return reason
end
if obj.status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator's first status"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. generation
  return hs
end
local ready = condition({ready})
if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for " .. {ready}
  if ready ~= nil then
    hs.message = said(ready)
  end
  return hs
end
if ready.status ~= "True" then
  local cause = ready
  local reason = ready.reason or ""
  if string.sub(reason, -8) == "NotReady" then
    local aspect = condition(string.sub(reason, 1, -9) .. "Ready")
    if aspect ~= nil and aspect.status ~= "True" then
      cause = aspect
    end
  end
  if transient[cause.reason] or cause.status == "Unknown" then
    hs.status = "Progressing"
  else
    hs.status = "Degraded"
  end
  hs.message = said(ready)
  if cause ~= ready then
    hs.message = said(cause)
  end
  return hs
end
{data_health}hs.status = "Healthy"
hs.message = said(ready)
return hs
"""

_DATA_HEALTH = """\
local health = condition({data_healthy})
if health ~= nil and health.status == "False" then
  hs.status = "Degraded"
  hs.message = {data_healthy} .. " " .. said(health)
  return hs
end
if health == nil or health.status ~= "True" then
  hs.status = "Healthy"
  hs.message = "Ready; data health not known yet"
  if health ~= nil then
    hs.message = "Ready; " .. said(health)
  end
  return hs
end
"""


def build_health_script(*, data_health: bool) -> str:
    """The Lua script of a kind; ``data_health``: the kind has a ``DataHealthy`` condition."""
    return _SCRIPT.format(
        transient=_lua_set(TRANSIENT_REASONS),
        ready=_lua_string(READY),
        data_health=_DATA_HEALTH.format(data_healthy=_lua_string(DATA_HEALTHY))
        if data_health
        else "",
    )


def build_health_checks() -> list[HealthCheck]:
    """The health checks of DataProduct, DataDomain and MeshPolicy."""
    kinds = ((dataproduct.KIND, True), (datadomain.KIND, False), (meshpolicy.KIND, False))
    return [
        HealthCheck(
            kind,
            f"resource.customizations.health.{GROUP}_{kind}",
            build_health_script(data_health=data_health),
            "data-health" if data_health else "ready",
        )
        for kind, data_health in kinds
    ]
