"""Shared fixtures: paths to the repo's own samples and to the public corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("AUDITKIT_CORPUS", REPO.parent / "shared" / "corpus"))


def corpus_dir(source: str) -> Path:
    """The corpus folder of ``source``, or skip the test with the reason."""
    folder = CORPUS / source
    if not folder.is_dir():
        pytest.skip(f"public sample corpus not found at {folder} (set AUDITKIT_CORPUS)")
    return folder


@pytest.fixture
def write_log(tmp_path):
    """Write text to a file in a temp folder and return its path."""

    def _write(text: str, name: str = "postgresql.log") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
