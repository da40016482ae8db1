"""kopf glue for DataProduct (layer ``handlers``, thin).

Every watch event of a product goes to the runtime, which decides what it calls for. kopf's
create/update/delete handlers are not used: they would write a diff-base annotation on every
change, a write per product that level-based handling does not need. Handlers return nothing:
a return value would land in the status.
"""

from __future__ import annotations

from typing import Any

import kopf

from dataproduct_operator.api.dataproduct import PLURAL
from dataproduct_operator.api.kinds import DATA_PRODUCT, GROUP, VERSION
from dataproduct_operator.runtime.operator import OperatorRuntime


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    """Register the DataProduct handlers on ``registry``."""

    @kopf.on.event(GROUP, VERSION, PLURAL, id="data-product-events", registry=registry)
    async def on_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        runtime.observe(DATA_PRODUCT, type, dict(body))
