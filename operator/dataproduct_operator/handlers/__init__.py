"""Layer ``handlers`` (thin kopf glue): parse the event, call ``reconcile``, report the outcome."""
