"""The docs point only at what a reader of the repository can open."""

from __future__ import annotations

import re

from tests.conftest import ROOT

DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("*/README.md")])
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path written in backticks that leaves the repository, e.g. `../notes/FACTS.md`.
OUTSIDE_PATH = re.compile(r"`\.\./[^`]*`")


def test_relative_links_resolve_inside_the_repository():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"[a-z]+:|#", target):
                continue
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(ROOT) or not path.exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_no_doc_cites_a_file_outside_the_repository():
    cited = [
        f"{doc.relative_to(ROOT)}: {match}"
        for doc in DOCS
        for match in OUTSIDE_PATH.findall(doc.read_text())
    ]
    assert not cited, cited
