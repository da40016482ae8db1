"""kopf glue for DataStore (layer ``handlers``, thin).

Every watch event of a store goes to the runtime: its mesh state keeps the stores products are
placed in, and its controller checks each store's login and writes the status.
"""

from __future__ import annotations

from typing import Any

import kopf

from dataproduct_operator.api.datastore import PLURAL
from dataproduct_operator.api.kinds import DATA_STORE, GROUP, VERSION
from dataproduct_operator.runtime.operator import OperatorRuntime


def register(registry: kopf.OperatorRegistry, runtime: OperatorRuntime) -> None:
    """Register the DataStore handlers on ``registry``."""

    @kopf.on.event(GROUP, VERSION, PLURAL, id="data-store-events", registry=registry)
    async def on_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        runtime.observe(DATA_STORE, type, dict(body))
