"""The ids a DataProduct and its output ports carry in every export (layer ``catalog``, pure).

One rule each, so the catalog's pages, the ODPS product and the ODCS contracts it points to
always name the same things: an ODPS ``contractId`` must be the ``id`` of the ODCS contract.
"""

from __future__ import annotations


def product_id(namespace: str, name: str) -> str:
    """The id of a product in ODPS and the catalog: ``<namespace>.<name>``."""
    return f"{namespace}.{name}"


def contract_id(namespace: str, name: str, port: str) -> str:
    """The id of an output port's ODCS contract: ``<namespace>.<name>.<port>``."""
    return f"{product_id(namespace, name)}.{port}"
