"""Layer ``reconcile`` (imperative): read observed state, diff, server-side apply, prune.

Uses ``specs`` and ``status`` for every decision and ``k8s`` for every API call.
"""
