"""Errors that carry a message meant for the person at the terminal.

The CLI prints a :class:`UserError` as one clear message and exits non-zero, without a
traceback; every other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A failure the user can act on; the message says what went wrong and the way out."""

    exit_code = 1


class MissingToolsError(UserError):
    """Control-plane binaries are neither built nor provided, and cannot be built here."""


class ToolBuildError(UserError):
    """``go build`` of a control-plane tool failed."""


class ComponentStartError(UserError):
    """A control-plane component exited or never became ready."""


class ImageBuildError(UserError):
    """A container image could not be built (a missing package, a failed step)."""
