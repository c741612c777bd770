"""Install instructions name explr's own distribution and a release tag that matches the version."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import explr

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_version_in_pyproject_matches_the_package():
    assert PYPROJECT["version"] == explr.__version__


def test_no_doc_installs_the_unrelated_pypi_explr():
    # PyPI's "explr" is another project: every pip line installs the repository (path or git URL)
    for doc in DOCS:
        for line in re.findall(r"pip install[^\n`&]*", doc.read_text()):
            assert not re.search(r"(?<![\w@/.-])explr(?![\w-])(?!\s*@)", line.split("pip install", 1)[1]), (doc, line)


def test_git_installs_use_the_distribution_name_and_the_release_tag():
    tag = f"v{explr.__version__}"
    found = [(doc.name, m) for doc in DOCS for m in re.findall(r'"([\w-]+) @ git\+https://[^"@]+@([^"]+)"', doc.read_text())]
    assert found, "no git+https install line in the docs"
    assert all(name == PYPROJECT["name"] and rev == tag for _, (name, rev) in found), found


def test_precommit_revs_are_the_release_tag():
    tag = f"v{explr.__version__}"
    texts = [(ROOT / "docs" / "ci.md").read_text(), (ROOT / ".pre-commit-hooks.yaml").read_text()]
    revs = [rev for text in texts for rev in re.findall(r"rev:\s+(\S+)", text)]
    assert len(revs) >= 2 and set(revs) == {tag}
