"""``--format json``: the report JSON (docs/contracts.md) as recorded, streamed one cluster at a
time.

The output is ``json.dumps(report, indent=2)`` of the recorded report, written piecewise so
that a 50,000-cluster report never exists as one Python string.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from fleet.report.common import Report


def _dump(value: Any, level: int) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + "  " * level)


def write_json(report: Report, out: TextIO) -> None:
    out.write("{")
    first = True
    for key, value in report.items():
        out.write("" if first else ",")
        first = False
        out.write(f"\n  {json.dumps(key)}: ")
        if key != "clusters":
            out.write(_dump(value, 1))
            continue
        out.write("[")
        empty = True
        for cluster in value:
            out.write("\n    " if empty else ",\n    ")
            empty = False
            out.write(_dump(cluster, 2))
        out.write("]" if empty else "\n  ]")
    out.write("\n}\n")
