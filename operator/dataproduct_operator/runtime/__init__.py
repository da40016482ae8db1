"""Layer ``runtime``: how work on the mesh's objects is scheduled and kept alive.

One work queue per kind (coalescing, one pass per object at a time, delays, backoff), the
outcome of each pass acted on (status writes, held status writes, Events, follow-up work), every
error retried or surfaced, supervised drift loops with heartbeats, the health endpoint, and
leader election. Used the same way by DataProduct, DataDomain and MeshPolicy; the kopf handlers
only feed it events.
"""
