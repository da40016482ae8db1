"""OpenLineage run events: what each pipeline run read and wrote, sent to a lineage backend.

``events`` builds the events (pure); ``client`` delivers them in the background, retrying, and
never holds up a reconcile. Switched on by ``dpo run --openlineage-url``.
"""
