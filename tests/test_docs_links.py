"""
The README and the pages under docs/: every relative link and image resolves to a file of the
repository, the README stays short, and no page names a path of the machines it was written on.
"""
import re
from pathlib import Path
from typing import Iterator, List, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"
README_MAX_LINES = 200
MACHINE_PATHS = ("../shared", "/work/")

# [text](target) and ![alt](target), with an optional "title"; the text may hold one level of
# brackets ([`x`][y] is not used here). Autolinks and reference-style links are not checked.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")  # http:, https:, mailto:, ...


def pages() -> List[Path]:
    return [README] + sorted((REPO_ROOT / "docs").rglob("*.md"))


def relative_links(page: Path) -> Iterator[Tuple[int, str]]:
    """(line number, target) of every relative link of `page`, outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        # Inline code spans are not links.
        line = re.sub(r"`[^`]*`", "", line)
        for match in LINK.finditer(line):
            target = match.group(1)
            if EXTERNAL.match(target) or target.startswith("#"):
                continue
            yield number, target


def broken_links(page: Path) -> List[str]:
    broken = []
    for number, target in relative_links(page):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (page.parent / path).exists():
            broken.append(f"{page.relative_to(REPO_ROOT)}:{number}: {target}")
    return broken


def test_every_relative_link_resolves():
    broken = [entry for page in pages() for entry in broken_links(page)]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_checker_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("x", encoding="utf-8")
    page.write_text(
        "[ok](there.md#part) [web](https://example.org) [top](#top) `[code](nowhere.md)`\n"
        "![figure](figures/missing.png)\n"
        "```\n[in a block](nowhere.md)\n```\n"
        "[gone](missing.md#x)\n",
        encoding="utf-8",
    )
    assert [(number, target) for number, target in relative_links(page)] == [
        (1, "there.md#part"),
        (2, "figures/missing.png"),
        (6, "missing.md#x"),
    ]
    missing = [target for number, target in relative_links(page) if not (tmp_path / target.split("#")[0]).exists()]
    assert missing == ["figures/missing.png", "missing.md#x"]


def test_readme_is_short():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, more than {README_MAX_LINES}"


def test_no_page_names_a_machine_path():
    found = [
        f"{page.relative_to(REPO_ROOT)}:{number}: {fragment}"
        for page in pages()
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1)
        for fragment in MACHINE_PATHS
        if fragment in line
    ]
    assert not found, "machine paths in the documentation:\n" + "\n".join(found)
