"""Data store drivers (layer ``stores``): the only code that talks to data stores.

:mod:`.driver` is the interface the reconcile layer calls (a Protocol, typed inputs and results);
:mod:`.postgres` is the PostgreSQL driver (pure planning modules and one I/O module);
:mod:`.volume` places ports on volumes (today's PersistentVolumeClaims). Nothing here knows
Kubernetes: the reconcile layer turns results into status, Events and Secrets.
"""
