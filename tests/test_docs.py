"""README.md and docs/*.md: no pointer outside the repository, and every relative link resolves."""

import re
from pathlib import Path

import pytest
from django.conf import settings

REPOSITORY = Path(settings.BASE_DIR).resolve()
DOCUMENTS = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("**/*.md"))]
FENCED_CODE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)


def relative_links(document: Path) -> list[str]:
    prose = INLINE_CODE.sub("", FENCED_CODE.sub("", document.read_text()))
    targets = INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)
    return [target for target in targets if not EXTERNAL.match(target)]


def names(paths: list[Path]) -> list[str]:
    return [str(path.relative_to(REPOSITORY)) for path in paths]


def test_the_architecture_document_exists():
    assert REPOSITORY / "docs" / "architecture.md" in DOCUMENTS


@pytest.mark.parametrize("document", DOCUMENTS, ids=names(DOCUMENTS))
def test_no_pointer_to_shared_outside_the_repository(document):
    assert "../shared" not in document.read_text()


@pytest.mark.parametrize("document", DOCUMENTS, ids=names(DOCUMENTS))
def test_relative_links_point_at_files_in_the_repository(document):
    for target in relative_links(document):
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.is_relative_to(REPOSITORY), f"{target} leaves the repository"
        assert path.exists(), f"{target} does not exist"


def test_relative_links_are_found():
    """The link pattern itself works: the README's pointer to the architecture is one."""
    assert "docs/architecture.md" in relative_links(REPOSITORY / "README.md")
    assert "../README.md" in relative_links(REPOSITORY / "docs" / "architecture.md")
