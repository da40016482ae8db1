"""The built-in SQL runner (layer ``runner``): what `dpo pipeline run` does inside a pipeline's
pod.

It reads the run spec the operator put in the pod's environment (:mod:`.spec`), reads each source
into an in-process DuckDB, stages the transform's rows cast to the port's types, checks them
against the port's contract and declared checks, publishes them in one PostgreSQL transaction as
the product's writer (:mod:`.engine`), and writes a run report the operator reads back from the
container's termination message (:mod:`.report`). Credentials come only from the environment and
never reach the report, stdout or an error message.
"""
