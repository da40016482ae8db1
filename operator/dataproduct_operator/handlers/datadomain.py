"""kopf glue for DataDomain (layer ``handlers``, thin).

Every watch event of a domain goes to the runtime. DataDomains are cluster-scoped: every
operator process serves them, whatever namespaces it watches for products.
"""

from __future__ import annotations

from typing import Any

import kopf

from dataproduct_operator.api.datadomain import PLURAL
from dataproduct_operator.api.kinds import DATA_DOMAIN, GROUP, VERSION
from dataproduct_operator.runtime.operator import OperatorRuntime


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    """Register the DataDomain handlers on ``registry``."""

    @kopf.on.event(GROUP, VERSION, PLURAL, id="data-domain-events", registry=registry)
    async def on_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        runtime.observe(DATA_DOMAIN, type, dict(body))
