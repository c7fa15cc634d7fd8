"""JsonFormatter: ``--log-format json``, one JSON object per log line, for programs that read the log."""

from __future__ import annotations

import datetime
import json
import logging


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"[, "exception"]}`` on one line.

    JSON escapes every control character, so a message holding a client's
    bytes or a newline still takes exactly one line.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)
