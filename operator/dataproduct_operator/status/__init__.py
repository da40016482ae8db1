"""Layer ``status`` (pure): ``compute_*`` functions, from model and observed children to conditions.

Imports only ``api``; never a client, kopf or metrics.
"""
