"""Built-in tasks: each a card from `rag_bench_tasks` plus the builder that implements it."""

from rag_bench.api import TaskCard, TaskDefinition, hookimpl
from rag_bench_tasks import card_path

from . import hotpotqa_5k, mirage, musique, nq_5k, nq_family, nq_open_dpr

BUILDERS = {
    "nq_5k": nq_5k.build,
    "hotpotqa_5k": hotpotqa_5k.build,
    "mirage": mirage.build,
    "musique": musique.build,
    "nq_open_dpr": nq_open_dpr.build,
    **{name: nq_family.build for name in nq_family.MEMBERS},
}


@hookimpl
def register_tasks(register):
    for name, build in BUILDERS.items():
        register(TaskDefinition(TaskCard.from_yaml(card_path(name)), build))
