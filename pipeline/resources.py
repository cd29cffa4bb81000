"""Where the bundled data is at run time: templates, the topic catalog, the sample dumps.

The repository keeps ``templates/`` and ``examples/inbox/`` at the top level (the layout is
fixed), but an installed wheel has no checkout around it. So ``pipeline/`` holds two symlinks,
``pipeline/templates -> ../templates`` and ``pipeline/sample_inbox -> ../examples/inbox``:
a checkout and an editable install read the originals through them, and building the wheel
copies their files in as package data of ``pipeline`` (no top-level ``templates`` package in
site-packages). Everything is then found the same way, through ``importlib.resources``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from pipeline.errors import ConfigError


def bundled(*parts: str) -> Path:
    """A file or folder shipped inside the ``pipeline`` package, as a real path."""
    found = files("pipeline").joinpath(*parts)
    # Jinja's loader and the demo want real files; a zipped install would not have them.
    if not isinstance(found, Path) or not found.exists():
        raise ConfigError(
            f"bundled data {'/'.join(parts)!r} is missing from the installed package; "
            "reinstall paperboy from its wheel or checkout"
        )
    return found


def email_templates() -> Path:
    return bundled("templates", "email")


def web_templates() -> Path:
    return bundled("templates", "web")


def sample_inbox() -> Path:
    return bundled("sample_inbox")


def sentence_model() -> Path:
    """The folder of the sentence model: ``model.onnx``, ``tokenizer.json``, its NOTICE."""
    return bundled("embedding", "minilm")
