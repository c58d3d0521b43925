"""`pip install .` (not editable) carries the task cards and maps folders to owned import names."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns(".venv", ".git", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "node_modules")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=SKIP)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
        check=True,
    )
    (path,) = (root / "dist").glob("rag_bench-*.whl")
    return path


def test_wheel_layout(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"rag_bench", "rag_bench_plugins", "rag_bench_leaderboard"}
    assert "rag_bench_plugins/builtin_tasks/nq_5k.yaml" in names
    for folder in (REPO / "plugins").iterdir():
        if (folder / "__init__.py").is_file():
            assert f"rag_bench_plugins/{folder.name}/__init__.py" in names, folder.name
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[rag_bench]" in entry_points and "bm25 = rag_bench_plugins.bm25" in entry_points
    assert "rag-bench = rag_bench.cli:main" in entry_points


def test_installed_wheel_finds_its_cards_and_plugins(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)], check=True)
    code = (
        "import rag_bench\n"
        "from rag_bench_plugins.builtin_tasks import card_path\n"
        "from rag_bench.registry import registry\n"
        "print(rag_bench.__file__)\n"
        "print(card_path('nq_5k'))\n"
        "print(','.join(registry().providers.names()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    module, card, providers = out.stdout.splitlines()
    assert module.startswith(str(target)) and card.startswith(str(target)) and Path(card).is_file()
    assert {"bm25", "no_retrieval"} <= set(providers.split(","))
