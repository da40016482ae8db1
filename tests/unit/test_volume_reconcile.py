"""Sending the volume plan: a bound Retain port's PersistentVolume is patched once, and a
refused patch is reported for StorageReady (never dropped). Against the runtime's in-memory
API server fake."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from dataproduct_operator.api.dataproduct import DataProduct
from dataproduct_operator.k8s.client import KubeClient
from dataproduct_operator.k8s.rest import ApiError
from dataproduct_operator.reconcile.dataproduct import ProductContext, converge_volumes
from dataproduct_operator.reconcile.mesh import MeshState
from tests.helpers import example_product
from tests.unit.runtime_fakes import FakeApi

VOLUME = "/api/v1/persistentvolumes/pv-1"


class VolumesApi(FakeApi):
    """The fake API server, listing the PersistentVolumes it holds that carry a label (an
    injected failure is left for the call after)."""

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(("LIST", path))
        key, _, value = (label_selector or "").partition("=")
        return [
            obj
            for stored, obj in self.objects.items()
            if stored.startswith(f"{path}/")
            and (obj["metadata"].get("labels") or {}).get(key) == value
        ]


async def _true() -> bool:
    return True


def context(api: FakeApi) -> ProductContext:
    return ProductContext(cast(KubeClient, api), MeshState(cast(KubeClient, api)), _true)


def bound_claims() -> dict[str, dict[str, Any] | None]:
    claim = {
        "metadata": {"name": "orders-orders-v1"},
        "spec": {"volumeName": "pv-1"},
        "status": {"phase": "Bound"},
    }
    return {"orders-v1": claim}


def product() -> DataProduct:
    return DataProduct.from_object(example_product())


def test_the_volume_of_a_bound_retain_port_is_retained_and_labelled_once() -> None:
    api = VolumesApi()
    api.put_object(VOLUME, {"metadata": {"name": "pv-1"}, "spec": {}})

    done = asyncio.run(converge_volumes(context(api), product(), bound_claims()))

    assert done.failures == []
    stored = api.objects[VOLUME]
    assert stored["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert stored["metadata"]["labels"]["datamesh.dev/output-port"] == "orders-v1"
    patches = [call for call in api.calls if call[0] == "PATCH"]
    asyncio.run(converge_volumes(context(api), product(), bound_claims()))
    assert [call for call in api.calls if call[0] == "PATCH"] == patches  # nothing more


def test_a_refused_volume_patch_is_reported_naming_the_volume_and_the_refusal() -> None:
    api = VolumesApi()
    api.put_object(VOLUME, {"metadata": {"name": "pv-1"}, "spec": {}})
    refusal = 'persistentvolumes "pv-1" is forbidden: User cannot patch resource'
    api.fail_next = [ApiError(403, "Forbidden", refusal)]

    done = asyncio.run(converge_volumes(context(api), product(), bound_claims()))

    assert done.failures == [
        "PersistentVolume pv-1 (output port orders-v1): could not set "
        f"persistentVolumeReclaimPolicy Retain: {refusal}"
    ]
    assert "persistentVolumeReclaimPolicy" not in api.objects[VOLUME]["spec"]
