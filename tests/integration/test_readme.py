"""The README and the guides in docs/ say what runs: every `cnnkit` command in their bash blocks names a real command
with flags its parser accepts, the README stays short enough to read top to bottom, and every link leads somewhere."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from cnnkit.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *GUIDES]
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def bash_blocks(page: Path) -> list[tuple[int, str]]:
    """The ```bash blocks of a page: (line number of the block's first line, its text)."""
    blocks, lines, start = [], page.read_text().splitlines(), None
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == "```bash":
            start, body = number + 1, []
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(body)))
            start = None
        elif start is not None:
            body.append(line)
    return blocks


def segments(line: str) -> list[list[str]]:
    """A shell line's simple commands (split at `&&`, `|`, `;` ...), each as words; comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    found, words = [], []
    for token in lexer:
        if token in OPERATORS or set(token) <= set("&|;()"):
            found, words = found + [words] if words else found, []
        else:
            words.append(token)
    return found + [words] if words else found


def cnnkit_words(words: list[str]) -> list[str] | None:
    """The arguments after `cnnkit` (also `srun cnnkit ...`, `python -m cnnkit.cli ...`); None for other commands."""
    for i, word in enumerate(words):
        if word == "cnnkit" and all(ASSIGNMENT.match(w) or w in ("srun", "env") for w in words[:i]):
            return words[i + 1:]
        if word == "cnnkit.cli" and i and words[i - 1] == "-m":
            return words[i + 1:]
    return None


def commands(page: Path) -> list[tuple[str, list[str]]]:
    """Every `cnnkit` command of the page's bash blocks: ("FILE:LINE", its arguments). Shell variables set in the
    page (`S=...; TOP="--region 0:1600"`, as in one shell) are expanded; placeholders (DATA_DIR, RUN) stay as
    written."""
    found, variables = [], {}
    for start, block in bash_blocks(page):
        for number, line in logical_lines(start, block):
            for name, value in variables.items():
                line = re.sub(rf"\$\{{{name}\}}|\${name}\b", lambda m, v=value: v, line)
            for words in segments(line):
                if all(ASSIGNMENT.match(w) for w in words):
                    variables.update(w.split("=", 1) for w in words)
                elif (args := cnnkit_words(words)) is not None:
                    found.append((f"{page.relative_to(ROOT)}:{number}", args))
    return found


def logical_lines(start: int, block: str) -> list[tuple[int, str]]:
    """A block's lines with backslash continuations joined, each with the page's number of its first line."""
    found, parts, first = [], [], None
    for offset, raw in enumerate(block.splitlines()):
        first = start + offset if first is None else first
        if raw.rstrip().endswith("\\"):
            parts.append(raw.rstrip()[:-1])
            continue
        found.append((first, " ".join([*parts, raw])))
        parts, first = [], None
    return found


ALL_COMMANDS = [(where, args) for page in PAGES for where, args in commands(page)]


def parse_error(args: list[str]) -> str | None:
    """What the parser says of these arguments: None when it accepts them (or they ask for --help)."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(args)
    except SystemExit as e:
        return None if e.code == 0 else stderr.getvalue().strip().splitlines()[-1]
    return None


def test_the_pages_hold_cnnkit_commands():
    assert README.exists() and GUIDES, "README.md and docs/*.md are read by these tests"
    assert len(ALL_COMMANDS) > 50
    for page in PAGES:
        if page.name != "index.md":
            assert commands(page), f"{page.relative_to(ROOT)} shows no cnnkit command in a ```bash block"


def test_the_check_refuses_what_the_parser_refuses():
    (words,) = segments('cnnkit export RUN [--quantize int8]  # optional parts in brackets are not a command')
    assert parse_error(cnnkit_words(words)) is not None
    assert parse_error(["no-such-command", "DATA"]) is not None
    assert parse_error(["train", "DATA", "--no-such-flag"]) is not None
    assert parse_error(["train", "DATA", "--model", "simple_cnn", "--out", "runs/x"]) is None


@pytest.mark.parametrize("where,args", ALL_COMMANDS, ids=[where for where, _ in ALL_COMMANDS])
def test_every_command_in_the_docs_parses(where, args):
    error = parse_error(args)
    assert error is None, f"{where}: cnnkit {shlex.join(args)}\n  {error}"


def test_the_two_commands_come_first():
    (_, block), *_ = bash_blocks(README)
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines == ['pip install -c constraints.txt -e . && cnnkit demo',
                     'pip install -c constraints.txt -e ".[test]" && pytest']


def test_the_readme_is_at_most_300_lines():
    assert len(README.read_text().splitlines()) <= 300


def test_every_command_has_its_line_in_the_readme():
    parser = build_parser()
    names = next(a for a in parser._actions if a.dest == "command").choices
    text = README.read_text()
    missing = [name for name in names if f"`cnnkit {name}" not in text]
    assert not missing, f"commands without a line in README.md: {missing}"


def test_every_guide_is_linked_from_the_readme_and_the_index():
    readme, index = README.read_text(), (ROOT / "docs" / "index.md").read_text()
    for guide in GUIDES:
        if guide.name != "index.md":
            assert f"(docs/{guide.name}" in readme, f"README.md does not link docs/{guide.name}"
            assert f"({guide.name}" in index, f"docs/index.md does not link {guide.name}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_link_resolves(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.relative_to(ROOT)}: link to {target}: no such file"
        if anchor and file.suffix == ".md":
            headings = [slug(line.lstrip("#")) for line in file.read_text().splitlines() if line.startswith("#")]
            assert anchor in headings, f"{page.relative_to(ROOT)}: link to {target}: no such heading"
