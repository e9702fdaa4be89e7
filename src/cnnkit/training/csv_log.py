"""The run's per-epoch CSV log across resumes and phases (Lightning's CSV logger starts a new file each time)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cnnkit._io import write_text


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def merge_csv_log(path: Path, earlier: str, epoch_offset: int = 0) -> None:
    """Put the epochs logged before back in front of ``path`` (a second phase counts its epochs from
    ``epoch_offset``)."""
    old_rows, new_rows = (list(csv.DictReader(io.StringIO(t))) for t in (earlier, read_text(path)))
    for row in new_rows:
        if row.get("epoch"):
            row["epoch"] = str(int(row["epoch"]) + epoch_offset)
    first_new = min((int(r["epoch"]) for r in new_rows if r.get("epoch")), default=10**9)
    rows = [r for r in old_rows if r.get("epoch") and int(r["epoch"]) < first_new] + new_rows
    header = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, out.getvalue())
