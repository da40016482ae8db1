"""``dpo access``: self-service access requests from the command line (layer ``cli``).

:mod:`.documents` builds the DataAccessRequest and DataAccessDecision documents and reads the
command line's references (pure); :mod:`.printing` turns typed models into tables and YAML
(pure); :mod:`.commands` asks the API server, through the ``k8s`` package, as the caller (or
whom ``--as`` names) and returns typed results for the CLI to print.
"""
