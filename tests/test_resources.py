"""Bundled data is found through the pipeline package, the same way in a checkout and a wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.resources import bundled, email_templates, sample_inbox, web_templates

ROOT = Path(__file__).resolve().parents[1]


def test_the_bundled_folders_are_the_repositorys_own() -> None:
    """In a checkout the symlinks lead to templates/ and examples/inbox/ at the top."""
    assert email_templates().resolve() == ROOT / "templates" / "email"
    assert web_templates().resolve() == ROOT / "templates" / "web"
    assert sample_inbox().resolve() == ROOT / "examples" / "inbox"
    assert (email_templates() / "digest.mjml.j2").is_file()


def test_missing_bundled_data_says_to_reinstall() -> None:
    """A broken install is a ConfigError naming what is missing, not a bare FileNotFoundError."""
    with pytest.raises(ConfigError, match="'templates/nope' is missing"):
        bundled("templates", "nope")
