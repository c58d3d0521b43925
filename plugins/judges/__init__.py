"""Opt-in LLM judge metrics, `ragas` and `ragchecker` (`rag-bench run ... --judges ragas,ragchecker`).

They call the same OpenAI-compatible endpoint as the `openai` reader unless
`-J key=value` settings say otherwise (see `settings.JudgeParams`), through
the same disk cache of calls. ragas and ragchecker are imported only when a
judge runs, with Ragas telemetry off.
"""

from rag_bench.api import hookimpl

from .ragas_judge import RagasJudge
from .ragchecker_judge import RagcheckerJudge
from .shared import quiet_libraries

quiet_libraries()


@hookimpl
def register_metrics(register):
    register("ragas", RagasJudge())
    register("ragchecker", RagcheckerJudge())


@hookimpl
def register_commands(cli):
    from .cli import judges

    cli.add_command(judges)
