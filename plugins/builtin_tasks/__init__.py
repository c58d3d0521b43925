"""Built-in tasks: each builder module with its card(s) beside it, `<name>.yaml` in this folder.

A builder module names the cards it builds in `CARDS` and implements them in `build`; adding a task is a card and
its builder here, and the module's name in `MODULES`.
"""

from importlib.resources import files
from pathlib import Path

from rag_bench.api import TaskCard, TaskDefinition, hookimpl

from . import hotpotqa_5k, mirage, musique, nq_5k, nq_family, nq_open_dpr

MODULES = (nq_5k, hotpotqa_5k, mirage, musique, nq_open_dpr, nq_family)


def card_path(name: str) -> Path:
    """Path of the built-in card `<name>.yaml` (beside its builder)."""
    return Path(str(files(__name__).joinpath(f"{name}.yaml")))


@hookimpl
def register_tasks(register):
    for module in MODULES:
        for name in module.CARDS:
            register(TaskDefinition(TaskCard.from_yaml(card_path(name)), module.build))
