"""The README stays short and leads to every page of the guide; no link in them is dead."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
# [text](target): markdown links and images, not web addresses.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """The fragments a heading of ``page`` gets, as GitHub spells them."""
    found = set()
    fence = False
    for line in page.read_text("utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading and not fence:
            text = re.sub(r"[^\w\- ]", "", heading[1].strip().lower())
            found.add(text.replace(" ", "-"))
    return found


def test_the_readme_opens_with_the_demo_and_the_tests() -> None:
    text = README.read_text("utf-8")
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    # CI runs exactly the README's test command.
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text("utf-8")


def test_the_readme_is_read_in_ten_minutes() -> None:
    assert len(README.read_text("utf-8").splitlines()) <= 250


def test_every_page_of_the_guide_is_linked_from_the_readme() -> None:
    linked = set(LINK.findall(README.read_text("utf-8")))
    assert PAGES
    for page in PAGES:
        assert f"docs/{page.name}" in linked, page.name


def test_no_link_is_dead() -> None:
    for page in [README, *PAGES]:
        for target in LINK.findall(page.read_text("utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, fragment = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name}: {target}"
            if fragment:
                assert fragment in anchors(resolved), f"{page.name}: {target}"
