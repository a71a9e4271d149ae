#!/usr/bin/env python3
"""Checks the project's documentation for what a reader would trip over.

- Every relative link (and image) in the checked files points at a file or folder that exists,
  and every `#fragment` names a heading of the file it points into (GitHub's anchors).
- The README keeps its main sections, so a whole section cannot vanish unnoticed.

Run from anywhere: `scripts/check-docs.py` (exit 1 and one line per problem when it fails).
Pass files to check others than the default set.
"""
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ["README.md", "deploy/README.md", "bench/README.md", "tests/python/README.md", "fuzz/README.md"]

# The README's level-2 sections a reader relies on, each matched by the start of its title.
REQUIRED_SECTIONS = [
    "Quick start",
    "In CI",
    "Moving in from an opsml 2.x server",
    "Configuration per environment",
    "Access",
    "Deploying to Spin and SpinKube",
    "The API",
    "Benchmarks",
    "Layout",
    "Tests",
]

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the text may hold `code` but no nested brackets.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`]*`")


def slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link keeps its text
    out = []
    for ch in title.strip().lower():
        if ch in " -_" or unicodedata.category(ch)[0] in "LN":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def lines_outside_code(text: str):
    """(line number, line) of every line that is not inside a fenced code block."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def headings(path: Path):
    """(level, title) of each heading, in order."""
    found = []
    for _, line in lines_outside_code(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def anchors(path: Path) -> set:
    seen = {}
    result = set()
    for _, title in headings(path):
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def check_links(path: Path) -> list:
    problems = []
    cache = {}
    for number, line in lines_outside_code(path.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # http:, https:, mailto: … are not checked offline
            file_part, _, fragment = target.partition("#")
            where = f"{path.relative_to(ROOT)}:{number}"
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                problems.append(f"{where}: link to {target}: {file_part} does not exist")
                continue
            if fragment:
                if linked.is_dir() or linked.suffix.lower() != ".md":
                    problems.append(f"{where}: link to {target}: a #fragment needs a Markdown file")
                    continue
                if linked not in cache:
                    cache[linked] = anchors(linked)
                if fragment not in cache[linked]:
                    problems.append(
                        f"{where}: link to {target}: {linked.relative_to(ROOT)} has no heading #{fragment}"
                    )
    return problems


def check_sections(readme: Path) -> list:
    titles = [title for level, title in headings(readme) if level == 2]
    return [
        f"{readme.relative_to(ROOT)}: the section \"## {wanted}…\" is missing"
        for wanted in REQUIRED_SECTIONS
        if not any(title.startswith(wanted) for title in titles)
    ]


def main(argv) -> int:
    files = [Path(a).resolve() for a in argv] or [ROOT / name for name in CHECKED]
    problems = []
    for path in files:
        if not path.exists():
            problems.append(f"{path}: the file to check does not exist")
            continue
        problems += check_links(path)
        if path == ROOT / "README.md":
            problems += check_sections(path)
    for problem in problems:
        print(problem, file=sys.stderr)
    checked = ", ".join(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in files)
    if problems:
        print(f"check-docs: {len(problems)} problem(s) in {checked}", file=sys.stderr)
        return 1
    print(f"check-docs: links and sections fine in {checked}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
