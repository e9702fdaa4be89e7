"""The benchmarks' one entry point, run from the repository's root:

    python -m benchmarks                  # list the scripts: the subject each measures, the data each needs
    python -m benchmarks NAME [ARGS...]   # run one (a script's name or a subject's), e.g. auto_budget --results
    python -m benchmarks report           # write BENCHMARKS.md from benchmarks/results/*.json
    python -m benchmarks report --check   # exit 1 when BENCHMARKS.md is not what the results files give
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import OUTPUT, render  # noqa: E402
from _results import load_all  # noqa: E402

DATA_NAMES = {"HYMENOPTERA": "hymenoptera", "SEALIONS": "sea lions"}


def scripts() -> dict[str, Path]:
    return {path.stem: path for path in sorted(HERE.glob("*.py")) if not path.stem.startswith("_")}


def subjects() -> dict[str, str]:
    """Each results file's subject and the script that measures it."""
    return {r["subject"]: Path(r["script"]).stem for r in load_all() if r.get("script")}


def needs(path: Path) -> str:
    """The outside data a script checks for (what it imports from _data.py), and whether it reads another benchmark's
    output."""
    source = path.read_text()
    found = [label for name, label in DATA_NAMES.items() if re.search(rf"\b{name}\b", source)]
    if "missing_made(" in source:
        found.append("another benchmark's output")
    return ", ".join(found) or "-"


def listing() -> str:
    feeds: dict[str, list[str]] = {}
    for result in load_all():
        for table in result["tables"]:
            command = table.get("command", result["command"])
            for name in re.findall(r"benchmarks/(\w+)\.py", command if isinstance(command, str) else " ".join(command)):
                feeds.setdefault(name, [])
                if result["subject"] not in feeds[name]:
                    feeds[name].append(result["subject"])
    rows = [("script", "results (subject)", "--results", "outside data", "what it measures")]
    for name, path in scripts().items():
        source = path.read_text()
        doc = re.search(r'"""(.*?)(?:\n|""")', source, re.S)
        first = doc.group(1).strip() if doc else ""
        rows.append((name, ", ".join(feeds.get(name, [])) or "- (docs/studies.md)",
                     "yes" if "add_option(parser" in source else "-", needs(path),
                     first if len(first) <= 60 else first[:57] + "..."))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)) + "  " + row[4] for row in rows]
    return "\n".join(lines) + ("\n\npython -m benchmarks NAME [ARGS...] runs one (NAME: a script or a subject; "
                               "--help for its options); python -m benchmarks report writes BENCHMARKS.md.")


def report(arguments: list[str]) -> int:
    generated = render()
    if arguments == ["--check"]:
        if OUTPUT.exists() and OUTPUT.read_text() == generated:
            print(f"{OUTPUT.name} is what the results files give")
            return 0
        print(f"{OUTPUT.name} differs from what benchmarks/results/ gives: run python -m benchmarks report")
        return 1
    if arguments:
        print("usage: python -m benchmarks report [--check]")
        return 2
    OUTPUT.write_text(generated)
    print(f"wrote {OUTPUT.name} ({len(generated.splitlines())} lines) from {len(load_all())} results files")
    return 0


def main(arguments: list[str]) -> int:
    if not arguments or arguments[0] in ("list", "-h", "--help"):
        print(__doc__.strip() + "\n\n" + listing())
        return 0
    name, rest = arguments[0], arguments[1:]
    if name == "report":
        return report(rest)
    known = scripts()
    script = known.get(name) or known.get(subjects().get(name, ""))
    if script is None:
        print(f"no benchmark {name!r}: choose a script or subject of `python -m benchmarks` "
              f"({', '.join(sorted(known))})")
        return 2
    return subprocess.run([sys.executable, str(script.relative_to(Path.cwd()) if script.is_relative_to(Path.cwd())
                                               else script), *rest]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
