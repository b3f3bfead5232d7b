"""Reading the ledger: the calls listing and usage aggregates, as rows and as table, CSV or
JSON text (docs/ledger.md, "Usage reports"). Used by the command line, the admin API and the
dashboard. May import `ledger` and the core modules.

A value a report cannot use (a date, a group, a format, a cursor) raises `ReportError`, the
core `BadArgument` under the name reports have always used for it.
"""

from ..errors import BadArgument as ReportError
from .aggregates import GROUPS, USAGE_FIELDS, histogram_percentile, percentile, usage
from .listing import CALL_TABLE_FIELDS, calls_page, encode_cursor, list_calls
from .render import FORMATS, render

__all__ = [
    "CALL_TABLE_FIELDS", "FORMATS", "GROUPS", "USAGE_FIELDS", "ReportError", "calls_page",
    "encode_cursor", "histogram_percentile", "list_calls", "percentile",
    "render", "usage",
]  # fmt: skip
