"""Every theory citation in the repository points to a section of docs/theory.md that exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THEORY = ROOT / "docs" / "theory.md"
SCANNED = [ROOT / "src", ROOT / "docs", ROOT / "benchmarks", ROOT / "tests", ROOT / "fixtures", ROOT / "README.md"]
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt"}
CITATION = re.compile(r"theory\.md\s*§\s*(\d+)((?:\s*,\s*§\s*\d+)*)")
STRAY = re.compile(r"THEORY|shared/docs|shared/seed")  # citations of files outside the repository
HEADING = re.compile(r"^## §(\d+) \S", re.MULTILINE)


def scanned_files() -> list[Path]:
    files = []
    for place in SCANNED:
        candidates = [place] if place.is_file() else sorted(place.rglob("*"))
        files += [f for f in candidates if f.is_file() and f.suffix in SUFFIXES and f != Path(__file__).resolve()]
    return files


def cited_sections(text: str) -> list[int]:
    sections = []
    for match in CITATION.finditer(text):
        sections.append(int(match.group(1)))
        sections += [int(n) for n in re.findall(r"\d+", match.group(2))]
    return sections


def test_theory_has_the_five_numbered_sections_in_order():
    numbers = [int(n) for n in HEADING.findall(THEORY.read_text(encoding="utf-8"))]
    assert numbers == [1, 2, 3, 4, 5]


def test_every_citation_names_an_existing_section():
    existing = set(int(n) for n in HEADING.findall(THEORY.read_text(encoding="utf-8")))
    dangling, count = [], 0
    for path in scanned_files():
        for section in cited_sections(path.read_text(encoding="utf-8", errors="replace")):
            count += 1
            if section not in existing:
                dangling.append(f"{path.relative_to(ROOT)}: §{section}")
    assert not dangling
    assert count >= 20  # guard: the scan really finds the repository's citations


def test_no_citation_of_files_outside_the_repository():
    stray = [f"{path.relative_to(ROOT)}:{n}" for path in scanned_files()
             for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
             if STRAY.search(line)]
    assert not stray


def test_citation_pattern_reads_lists_and_rejects_missing_sections():
    assert cited_sections("see docs/theory.md §1, §2 and theory.md §4") == [1, 2, 4]
    assert 7 not in set(int(n) for n in HEADING.findall(THEORY.read_text(encoding="utf-8")))
