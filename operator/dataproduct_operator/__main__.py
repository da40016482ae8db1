"""Entry point for ``python -m dataproduct_operator``; the same as the ``dpo`` command."""

from dataproduct_operator.cli import main

main()
