"""The wheel: built from the checkout and installed into a fresh venv elsewhere, it works."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the build reads; copied (symlinks kept) so the build never writes into the checkout.
SOURCES = ("pyproject.toml", "README.md", "pipeline", "subscribers", "templates", "examples")

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{cmd[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    # With the dev extra's setuptools, so the build needs no index (offline-safe).
    build = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), "."]
    run([sys.executable, "-m", "pip", *build], source)
    [built] = dist.glob("paperboy-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel; the dependencies come from the test run's own environment
    through a .pth line (paths listed in a .pth are not scanned for .pth files, so the
    checkout's editable-install hook stays out), so nothing is downloaded."""
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / "bin" / "python"
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], home
    )
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(purelib.strip(), "_paperboy_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        home,
    )
    return home


def clean_env() -> dict[str, str]:
    drop = ("PAPERBOY_", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def test_the_wheel_carries_every_package_and_its_data_but_no_top_level_templates(
    wheel: Path,
) -> None:
    """Subpackages, templates, the topic catalog and the sample dumps are inside ``pipeline``."""
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"pipeline", "subscribers", "paperboy-0.1.0.dist-info"}
    for path in (
        "pipeline/commands/demo.py",
        "pipeline/render/compiler.py",
        "pipeline/matching/match.py",
        "pipeline/matching/topics.toml",
        "pipeline/templates/README.md",
        "pipeline/templates/email/digest.mjml.j2",
        "pipeline/templates/web/static/app.js",
        "pipeline/sample_inbox/hf_daily_papers_2026-07-06.txt",
        "pipeline/embedding/minilm/model.onnx",
        "pipeline/embedding/minilm/tokenizer.json",
        "pipeline/embedding/minilm/LICENSE",
        "pipeline/embedding/minilm/NOTICE",
    ):
        assert path in names, f"{path} is missing from the wheel"


def test_installed_wheel_runs_help_and_demo_outside_the_checkout(
    installed: Path, tmp_path: Path
) -> None:
    """``paperboy --help`` and ``paperboy demo`` work from a venv that only has the wheel."""
    paperboy = str(installed / "bin" / "paperboy")
    env = clean_env()
    where = run(
        [str(installed / "bin" / "python"), "-c", "import pipeline; print(pipeline.__file__)"],
        tmp_path,
        env,
    )
    assert where.startswith(str(installed)), where  # the wheel's copy, not the checkout
    assert "demo" in run([paperboy, "--help"], tmp_path, env)
    out = json.loads(
        run([paperboy, "demo", "--dir", str(tmp_path / "demo"), "--json"], tmp_path, env)
    )
    assert [f["error"] for f in out["files"]] == [None, None, None]
    assert out["delivery"]["sent"] == 1
    assert [Path(p).suffix for p in out["emails"]] == [".eml"]


def test_installed_wheel_embeds_a_sentence_with_the_bundled_model(
    installed: Path, tmp_path: Path
) -> None:
    """The sentence model travels in the wheel and runs from it: one unit vector of 384."""
    code = (
        "from pipeline.embedding.model import load_embedder; from pipeline.resources import "
        "sentence_model; v = load_embedder().embed(['Forecasting rain with neural networks.']); "
        "print(sentence_model(), v.shape[0], v.shape[1], round(float((v * v).sum()), 3))"
    )
    out = run([str(installed / "bin" / "python"), "-c", code], tmp_path, clean_env())
    folder, rows, dim, norm = out.split()
    assert folder.startswith(str(installed)), folder  # the wheel's copy, not the checkout
    assert (rows, dim, norm) == ("1", "384", "1.0")
