"""kopf glue for MeshPolicy (layer ``handlers``, thin).

Every watch event of a policy goes to the runtime. A change of a policy's rules re-audits every
product (the runtime's mesh state sees it); the policy's own admission objects follow its spec.
"""

from __future__ import annotations

from typing import Any

import kopf

from dataproduct_operator.api.kinds import GROUP, MESH_POLICY, VERSION
from dataproduct_operator.api.meshpolicy import PLURAL
from dataproduct_operator.runtime.operator import OperatorRuntime


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    """Register the MeshPolicy handlers on ``registry``."""

    @kopf.on.event(GROUP, VERSION, PLURAL, id="mesh-policy-events", registry=registry)
    async def on_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        runtime.observe(MESH_POLICY, type, dict(body))
