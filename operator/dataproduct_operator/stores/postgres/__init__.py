"""The PostgreSQL store driver (layer ``stores``).

Pure modules plan: :mod:`.settings` (connection, pool bounds, timeouts), :mod:`.naming`
(identifiers within 63 bytes), :mod:`.types` (logical type to SQL type, cast rules),
:mod:`.markers` (ownership comments), :mod:`.statements` (safely quoted statements),
:mod:`.state` (desired and observed state), :mod:`.plan` (the diff: the minimal ordered
statement list), :mod:`.observe` (the catalog queries and their parsing), :mod:`.scram`
(password verifiers). :mod:`.store` is the only module doing I/O (psycopg).
"""
