"""Package discovery with the folder -> import-name mapping the layout needs.

The top-level folders `plugins/` (the built-in plugins, the task cards beside their
builders in `plugins/builtin_tasks/`) and `leaderboard/` are installed as `rag_bench_plugins`
and `rag_bench_leaderboard`, so no generic names land in site-packages. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

MAPPED = {"rag_bench_plugins": "plugins", "rag_bench_leaderboard": "leaderboard"}

packages = find_packages(include=["rag_bench", "rag_bench.*"])
for name, folder in MAPPED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir={"rag_bench": "rag_bench", **MAPPED})
