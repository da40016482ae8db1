"""Layer ``specs`` (pure): ``build_*`` functions that turn a model into desired child objects.

Imports only ``api``; never a client, kopf or metrics.
"""
