"""Which passages are held out of preparation and written in later, and the task view that lacks them."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Sequence

from ..errors import RagBenchError
from ..jsonl import fingerprint
from ..task import Task
from ..types import Passage, Question

#: The split whose gold passages are held out and whose questions score the write. Never the test split.
SPLIT = "dev"
#: What the selection is, for the result file and the report.
SELECTION = ("gold passages of dev questions, taken question by question in the order of sha256(seed:qid) "
             "(all of a question's gold passages together), skipping passages that a question of another split "
             "names; split into batches in that order")


@dataclass
class HeldOut:
    """The held-out passages of a task, in write order, and the dev questions on each side.

    `batches` cut `passages` into consecutive groups (one group: a single
    write). `batch_questions[j]` are the new questions whose held-out gold
    passages are all written once batch j is (and not before); `old_questions`
    are the dev questions that name no held-out passage.
    """

    passages: list[Passage]
    batches: list[list[Passage]]
    batch_questions: list[list[Question]]
    old_questions: list[Question]
    seed: int

    @property
    def doc_ids(self) -> list[str]:
        return [p.doc_id for p in self.passages]

    @property
    def new_questions(self) -> list[Question]:
        """Every question that needs a held-out passage, in batch order."""
        return [q for batch in self.batch_questions for q in batch]

    def describe(self) -> dict:
        """JSON-ready: how the passages were chosen, which ones, and the question counts."""
        return {
            "split": SPLIT, "seed": self.seed, "selection": SELECTION, "passages": len(self.passages),
            "doc_ids": self.doc_ids, "new_questions": len(self.new_questions), "old_questions": len(self.old_questions),
            "batches": [{"passages": len(b), "questions": len(q), "doc_ids": [p.doc_id for p in b]}
                        for b, q in zip(self.batches, self.batch_questions)],
        }


def _order(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode("utf-8")).hexdigest()


def select_held_out(task: Task, count: int, batches: int = 1, seed: int = 0) -> HeldOut:
    """Choose `count` passages to hold out of `task` and split them into `batches` groups (see `SELECTION`).

    Deterministic: the same task, count, batches and seed give the same passages in the same order, whatever the
    order of the task's files. Raises a RagBenchError saying how many passages the task offers when it has too few.
    """
    if count < 1:
        raise RagBenchError(f"--held-out must be at least 1, got {count}")
    if batches < 1:
        raise RagBenchError(f"--batches must be at least 1, got {batches}")
    if SPLIT not in task.card.splits:
        raise RagBenchError(f"write-curve holds out the gold passages of dev questions, and task {task.name} has no "
                            f"dev split (its splits: {', '.join(task.card.splits)}); use a task with one")
    if task.external is not None or not task.corpus:
        raise RagBenchError(f"write-curve needs a task whose corpus is in memory; {task.name} has none")
    dev = task.split(SPLIT)
    elsewhere = {d for q in task.questions if q.split != SPLIT for d in q.gold_doc_ids}
    by_id = task.passages_by_id
    eligible = {d for q in dev for d in q.gold_doc_ids if d in by_id and d not in elsewhere}
    if count > len(eligible):
        raise RagBenchError(f"task {task.name} offers {len(eligible)} dev gold passages that no other split names; "
                            f"ask --held-out {len(eligible)} or fewer")
    units: list[list[str]] = []
    held: set[str] = set()
    for question in sorted(dev, key=lambda q: _order(seed, q.qid)):
        golds = list(dict.fromkeys(question.gold_doc_ids))
        if not golds or any(d not in eligible for d in golds):
            continue
        unit = [d for d in golds if d not in held]
        if unit and len(held) + len(unit) <= count:
            units.append(unit)
            held.update(unit)
        if len(held) == count:
            break
    if len(held) < count:
        raise RagBenchError(f"task {task.name}: its dev questions' gold passages (taken a question at a time) make "
                            f"{len(held)} held-out passages, not {count}; ask --held-out {len(held)}")
    if batches > len(units):
        raise RagBenchError(f"--batches {batches} is more than the {len(units)} groups of held-out passages "
                            f"(a question's gold passages stay in one batch); ask fewer batches or more passages")
    groups: list[list[Passage]] = [[] for _ in range(batches)]
    done, previous = 0, -1
    for index, unit in enumerate(units):
        # the batch whose share of `count` this unit's first passage falls in, skipping none and leaving at least one
        # unit for each later batch
        target = min(max(done * batches // count, batches - (len(units) - index)), previous + 1, batches - 1)
        groups[target] += [by_id[d] for d in unit]
        done, previous = done + len(unit), target
    position = {p.doc_id: j for j, group in enumerate(groups) for p in group}
    batch_questions: list[list[Question]] = [[] for _ in range(batches)]
    old: list[Question] = []
    for question in sorted(dev, key=lambda q: _order(seed, q.qid)):
        needed = [position[d] for d in question.gold_doc_ids if d in position]
        if needed:
            batch_questions[max(needed)].append(question)
        else:
            old.append(question)
    return HeldOut([p for g in groups for p in g], groups, batch_questions, old, seed)


def view_name(task: Task, doc_ids: Sequence[str]) -> str:
    """The derived task's name: ``<task>-minus-<hash of the held-out doc ids>``."""
    return f"{task.name}-minus-{fingerprint(sorted(doc_ids), 12)}"


def task_without(task: Task, doc_ids: Sequence[str]) -> Task:
    """`task` as if `doc_ids` did not exist yet: those passages and every question naming one are left out.

    It is a task of its own for every cache: its name is `view_name` and each of
    its file hashes is derived from the original's and the held-out ids, so a
    provider's workdir for it (keyed by task name and file hashes) never is the
    full task's. The card is otherwise the same (version, splits, k).
    """
    held = set(doc_ids)
    missing = held - set(task.passages_by_id)
    if missing:
        raise RagBenchError(f"task {task.name} has no passage {sorted(missing)[0]!r} to hold out")
    card = dataclasses.replace(task.card, name=view_name(task, doc_ids))
    corpus = [p for p in task.corpus if p.doc_id not in held]
    questions = [q for q in task.questions if not held.intersection(q.gold_doc_ids)]
    files = {name: fingerprint({"file": sha, "without": sorted(held)}, 64) for name, sha in task.files_sha256.items()}
    return Task(card, task.path, corpus, questions, files, dict(task.source_sha256))
