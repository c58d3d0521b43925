"""Builder of the NQ corpus family: nq_5k's questions over nested corpora of 1K to ~17K passages.

One builder serves every member's card (nq_1k.yaml beside this module, nq_2k5, nq_10k,
nq_17k; nq_5k itself is the 5K member). The card's `build` section gives the
corpus size and how many gold passages it keeps; everything else is the same
fixed order for every member, so each corpus contains every smaller one:

* gold passages ranked by sha256(gold_salt, title, text), the first
  `gold_passages` kept, with the questions whose gold passage they are;
* distractors in one fixed order: nq_5k's 2,400 distractors (FlashRAG plus
  its first 1,400 HotpotQA paragraphs) ranked by sha256(distractor_salt,
  title, text), then every other paragraph of the pool ranked the same way;
  the first `corpus_size - gold_passages` kept.

Passage ids and the corpus order are nq_5k's (gold, FlashRAG, HotpotQA dev by
nq_5k's rank), then the HippoRAG paragraphs by file position, so the rule at
5,000 passages rebuilds nq_5k byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping, Sequence

from rag_bench.api import Passage, Question, RagBenchError, TaskCard

from .hipporag_data import listed_paragraphs, sentence_paragraphs
from .nq_5k import flashrag_passages, gold_passages, hotpot_candidates, hotpot_passages, oracle_questions, read_oracle
from .text import rank_key

#: The family's cards built here; nq_5k, the 5,000-passage member, keeps its own builder (nq_5k.py).
MEMBERS = ("nq_1k", "nq_2k5", "nq_10k", "nq_17k")
#: The cards this module builds (`<name>.yaml` beside it).
CARDS = MEMBERS

#: Card source name, doc id prefix and reader of each extra paragraph file, in the order they join the pool.
EXTRA_SOURCES: tuple[tuple[str, str, Callable[[Path], list[tuple[str, str]]]], ...] = (
    ("twowiki_corpus", "2wiki", listed_paragraphs),
    ("musique_corpus", "musique", listed_paragraphs),
    ("hotpotqa_train_corpus", "hotpottrain", sentence_paragraphs),
)


def paragraph_key(title: str, text: str) -> tuple[str, str]:
    """Identity of a paragraph across sources: title and whitespace-normalised text."""
    return title, " ".join(text.split())


def extra_passages(sources: Mapping[str, Path], taken_titles: set[str], seen: set[tuple[str, str]]) -> list[Passage]:
    """The HippoRAG paragraphs the card names that are new (by `paragraph_key`) and whose title is not taken.

    Ids are `<prefix>-NNNN` by position in the source file; `seen` grows with every paragraph kept.
    """
    out = []
    for name, prefix, read in EXTRA_SOURCES:
        if name not in sources:
            continue
        for position, (title, text) in enumerate(read(sources[name])):
            key = paragraph_key(title, text)
            if title in taken_titles or key in seen:
                continue
            seen.add(key)
            out.append(Passage(f"{prefix}-{position:04d}", title, text))
    return out


def hash_ranked(passages: Sequence[Passage], salt: str) -> list[Passage]:
    """`passages` sorted by sha256(salt, title, text): a fixed order that any subset keeps."""
    return sorted(passages, key=lambda p: rank_key(salt, p.title, p.text))


def take(ranked: Sequence[Passage], count: int, what: str, card: TaskCard) -> list[Passage]:
    """The first `count` of `ranked`, or a clear error when there are fewer."""
    if count < 0 or count > len(ranked):
        raise RagBenchError(
            f"{card.name}: the card asks for {count} {what} but the sources give {len(ranked)}; "
            "are the source files right?"
        )
    return list(ranked[:count])


def build(card: TaskCard, sources: Mapping[str, Path]) -> tuple[list[Passage], list[Question]]:
    """Build one member of the family from its card (see the module docstring and the card's construction)."""
    params = card.params()
    oracle = read_oracle(sources["nq_oracle"])
    gold = gold_passages(oracle)
    flashrag = flashrag_passages(sources["flashrag_sample"])
    taken_titles = {p.title for p in gold + flashrag}
    hotpot = hotpot_passages(hotpot_candidates(sources["hotpotqa_dev"], taken_titles, params["nq_5k_distractor_salt"]))
    nq_5k_hotpot = params["nq_5k_hotpot_distractors"]
    seen = {paragraph_key(p.title, p.text) for p in gold + flashrag + hotpot}
    extra = extra_passages(sources, taken_titles, seen)

    distractor_order = hash_ranked(flashrag + hotpot[:nq_5k_hotpot], params["distractor_salt"]) + hash_ranked(
        hotpot[nq_5k_hotpot:] + extra, params["distractor_salt"]
    )
    kept_gold = take(hash_ranked(gold, params["gold_salt"]), params["gold_passages"], "gold passages", card)
    distractors = take(distractor_order, params["corpus_size"] - len(kept_gold), "distractors", card)
    chosen = {p.doc_id for p in kept_gold + distractors}
    corpus = [p for p in gold + flashrag + hotpot + extra if p.doc_id in chosen]

    kept_ids = {p.doc_id for p in kept_gold}
    questions = [
        q
        for q in oracle_questions(oracle, gold, card.raw["splits"], params["split_salt"])
        if q.gold_doc_ids[0] in kept_ids
    ]
    return corpus, questions
