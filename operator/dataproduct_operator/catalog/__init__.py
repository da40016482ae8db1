"""The data product catalog: discovery pages, JSON API, lineage graph and open-standard exports.

Pure views (``model``, ``lineage``, ``svg``, ``exports``) turn API objects into what the catalog
shows; ``cache`` keeps products and domains in memory from watches and ``server`` serves them.
"""
