"""The results files: one JSON file per subject in benchmarks/results/, the data BENCHMARKS.md is generated from.

A file holds one subject's current measurement: what is measured (`measures`), the `command`, `machine` and `date`
it was measured with, its `tables` (columns, and rows as data), and what the numbers show (`findings`). A table
measured with another command (a second script, another day) carries its own `command`, `machine` and `date`.
Prose may be one string or a list of strings, joined by spaces.

A table's columns: `key` (the rows' field), `label` (the header), and optionally `format`, a str.format template
applied to the cell (a dict cell fills the template's fields: `{detected} / {dots}`), and `join`, the separator of a
list cell (default " / "). A missing or null cell prints as "-".

A script asked for `--results` writes its tables with `record`: they replace every table that script measured before,
and the subject's tables from other commands are kept with the command, machine and date they were measured with.
The prose is kept; findings written for an earlier measurement are marked with that date until someone rereads them
(and deletes `findings_date`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
REQUIRED = ("subject", "title", "measures", "command", "machine", "date", "tables", "findings")
WIDTH = 140


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def load_all(folder: Path = RESULTS) -> list[dict]:
    """Every results file of the folder, in file-name order."""
    return [load(path) for path in sorted(Path(folder).glob("*.json"))]


def text(prose: str | list[str]) -> str:
    """One paragraph from a string or a list of strings."""
    return prose if isinstance(prose, str) else " ".join(prose)


def problems(result: dict) -> list[str]:
    """What a results file lacks or gets wrong, one line each (empty when it is whole)."""
    name = result.get("subject", "?")
    found = [f"{name}: no {field}" for field in REQUIRED if not result.get(field) and field != "findings"]
    for number, table in enumerate(result.get("tables") or [], 1):
        keys = [column.get("key") for column in table.get("columns", [])]
        if not keys or not table.get("rows") or not table.get("id"):
            found.append(f"{name}: table {number} needs an id, columns and rows")
        for row in table.get("rows", []):
            if set(row) - set(keys):
                found.append(f"{name}: table {table.get('id')}: row fields {sorted(set(row) - set(keys))} "
                             f"have no column")
    return found


def dumps(value, indent: int = 0, used: int = 0) -> str:
    """JSON that reads as a table: a list or object that fits on one line is written on one (rows, columns)."""
    line = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or not value or used + len(line) <= WIDTH:
        return line
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            head = f"{pad}{json.dumps(key, ensure_ascii=False)}: "
            items.append(head + dumps(item, indent + 2, len(head)))
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(pad + dumps(item, indent + 2, len(pad)) for item in value) + "\n" + " " * indent + "]"


def machine() -> str:
    """This machine in one line: CPU, cores, accelerator, Python and torch versions (torch is not imported)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        gpu = []
    versions = [f"Python {platform.python_version()}"]
    for package in ("torch", "lightning"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{cpu}, {os.cpu_count()} cores, {', '.join(gpu) if gpu else 'no GPU'}, {platform.system()}; "
            + ", ".join(versions))


def add_option(parser: argparse.ArgumentParser, subject: str) -> None:
    """`--results [PATH]`: write the tables to benchmarks/results/SUBJECT.json (or PATH)."""
    parser.add_argument("--results", type=Path, nargs="?", const=RESULTS / f"{subject}.json", metavar="PATH",
                        help=f"write the tables to benchmarks/results/{subject}.json (or PATH), from which "
                             "`python -m benchmarks report` writes BENCHMARKS.md")


def command_line(script: str) -> str:
    """The command that ran this script, as a user would type it again."""
    return " ".join(["python", f"benchmarks/{Path(script).name}", *sys.argv[1:]])


def measured_by(table: dict, subject: dict, script: str) -> bool:
    """Whether `script` (benchmarks/NAME.py) measured this table of `subject`."""
    command = table.get("command", subject.get("command", ""))
    return any(script in line for line in (command if isinstance(command, list) else [command]))


def record(path: Path, subject: str, tables: list[dict], command: str, today: str | None = None) -> dict:
    """Write a script's new measurement into the results file `path` (see the module's docstring) and return it."""
    path = Path(path)
    old = load(path) if path.exists() else {"subject": subject, "title": subject, "measures": "", "findings": []}
    script = command.split()[1]
    pinned = {key: old[key] for key in ("command", "machine", "date") if old.get(key)}
    kept = [{**pinned, **table} for table in old.get("tables", []) if not measured_by(table, old, script)]
    result = {**old, "subject": subject, "command": command, "machine": machine(),
              "date": today or date.today().isoformat(), "source": f"written by {script} --results",
              "tables": [*tables, *kept]}
    if old.get("findings") and old.get("date") and old["date"] != result["date"]:
        result["findings_date"] = old.get("findings_date", old["date"])
    result = {key: result[key] for key in [*old, *result] if key in result}  # the old file's order of fields
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(result) + "\n")
    print(f"results written to {path}")
    return result
