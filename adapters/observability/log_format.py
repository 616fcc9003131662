"""How log lines look: one JSON object a line (python-json-logger), or readable text.

``json`` is the default when the log stream is not a terminal (a container, a file, a
log shipper); ``text`` in a terminal. Fields passed as ``extra`` (a task event's
``task_id``, ``error``...) are JSON keys, or ``key=value`` after a text line; a
``traceback`` field follows a text line on lines of its own.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["json", "text"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TERMINAL_ONLY = frozenset({"color_message"})
"""``extra`` fields that repeat the message for a terminal (uvicorn's coloured copy)."""
_STANDARD = (
    frozenset(logging.makeLogRecord({}).__dict__)
    | {"message", "asctime", "taskName"}
    | TERMINAL_ONLY
)
"""The attributes every LogRecord has, and the copies above: anything else on one came
as ``extra`` and is a field of the line."""


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, then the record's extra fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        trace = extra.pop("traceback", None)
        if extra:
            line += " " + " ".join(f"{key}={value!r}" for key, value in extra.items())
        if trace:
            line += "\n" + str(trace).rstrip("\n")
        return line


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, *TERMINAL_ONLY],
        json_ensure_ascii=False,
    )


def choose_format(wanted: LogFormat | None, stream: TextIO) -> LogFormat:
    """``wanted`` if set; else text on a terminal, json otherwise."""
    if wanted is not None:
        return wanted
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure_logging(level: str, wanted: LogFormat | None, stream: TextIO | None = None) -> None:
    """The root logger writes to ``stream`` (stderr) at ``level`` in the chosen format."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    fmt = choose_format(wanted, stream)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
