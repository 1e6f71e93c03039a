"""The CLI's standard streams with every registered secret masked.

Every command prints through ``sys.stdout``/``sys.stderr`` (typer, rich, logs, an
uncaught traceback), so wrapping them once covers every message of every command,
including an error body in which a vendor echoed a token back.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from agent.core.redaction import redact

__all__ = ["RedactingStream", "redact_standard_streams"]


class RedactingStream:
    """A text stream that masks secrets in what is written, then passes it on.

    It has no ``buffer``: writers that would bypass it for the binary buffer (click)
    then write text through it instead.
    """

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner

    @property
    def inner(self) -> TextIO:
        return self._inner

    def write(self, text: str) -> int:
        self._inner.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._inner.flush()

    def isatty(self) -> bool:
        return self._inner.isatty()

    def fileno(self) -> int:
        return self._inner.fileno()

    @property
    def encoding(self) -> str:
        return self._inner.encoding

    @property
    def errors(self) -> str | None:
        return self._inner.errors

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._inner.closed

    def __getattr__(self, name: str) -> Any:
        if name == "buffer":
            raise AttributeError(name)
        return getattr(self._inner, name)


def redact_standard_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` (once) so nothing printed can carry a secret."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
