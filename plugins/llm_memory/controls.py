"""The controls of an llm_memory run: the trivial systems that could have produced its evidence, each handed the same
questions and (where it routes) the same routing, so that `metrics.py` scores them beside the provider
(`control.<name>.<metric>`, `delta.<name>.<metric>` with the harness's paired bootstrap).

Each one can fail: none is built from the evidence the provider generated for the rank it stands in for.

- `text_store`: the stored text itself. For each routed passage, the sentence with the most words in common with
  the question (lower-cased ``\\w+`` words, distinct; ties to the earliest sentence), cut to the token budget of the
  generated evidence (`max_new_tokens` tokens of the memory's tokenizer, decoded back as generated ids are). The
  lookup table the LM must beat: no z, no LM, the routing's passages and a word count.
- `no_lm_readout`: z read back without the LM. Each content slot of proj(z_i) (every slot but the routing key slot
  where the layout has one) mapped to the input-embedding row of the LM nearest by cosine, the ids decoded (special
  tokens skipped), at most `max_new_tokens` of them. Beating it shows the LM adds something to what z spells.
- `closed_book`: a second memory trained on the same examples with the same LM and adapters, z withheld (every z
  zeroed in training and generation, `closed_book=True`), answering the question alone: what the weights know
  without z. Generated once per question and repeated at every rank.
- `hard_shuffle`: generation at rank r reads the z of the passage routed at rank r+1 (the last rank the next one
  routing finds past it): a plausible neighbour's memory, not a random one.
- `shuffled_z`: every routed z replaced by another passage's (a fixed seeded derangement of Z).
- `zeroed_z`: every routed z replaced by zeros. Out of distribution: training never fed the model a zero memory
  (its evidence is often degenerate), so it separates little; kept for continuity.
- `query_swap`: the rank-1 evidence regenerated from the same routed z with another question's text (a fixed seeded
  derangement of the split's questions). Its texts are scored as the other controls are, and
  `control.query_swap.unchanged` is the share of questions whose text did not change at all (1.0 per question
  when identical): at 1.0 the evidence ignores the question.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from rag_bench.api import Passage, Question

from .data import most_shared, sentences
from .generation import encode, generate_shared, prefill_queries, texts_of
from .metrics import words

#: Every control a run can carry, with what it is (the run's metadata lists the ones it produced).
DESCRIPTIONS = {
    "text_store": "the routed passages' stored text: the sentence sharing most words with the question, cut to the "
                  "generated evidence's token budget (the lookup table the LM must beat)",
    "no_lm_readout": "z read back without the LM: each content slot of proj(z_i) as its nearest input-embedding token",
    "closed_book": "the same LM and adapters trained on the same examples with z withheld (zeros), answering from the "
                   "question alone; one text per question, repeated at every rank",
    "hard_shuffle": "generation at rank r reads the z of the passage routed at rank r+1 (a neighbour's memory)",
    "shuffled_z": "generation reads another passage's z (a fixed seeded derangement of Z), routing unchanged",
    "zeroed_z": "generation reads zeros instead of z (out of distribution: training never fed a zero memory)",
    "query_swap": "the rank-1 evidence regenerated from the same z with another question's text; "
                  "control.query_swap.unchanged is the share of texts that stay identical",
}
#: Controls whose input the model never saw in training: their low scores show little.
OUT_OF_DISTRIBUTION = ("zeroed_z",)
#: The order records list them in.
NAMES = ("text_store", "no_lm_readout", "closed_book", "hard_shuffle", "shuffled_z", "zeroed_z", "query_swap")
#: Where the closed-book memory is trained, inside the provider's workdir.
CLOSED_BOOK_DIR = "closed_book"
#: Rows of proj(z) compared with the whole vocabulary at once by the no-LM readout.
READOUT_CHUNK = 256


def derangement(n: int, seed: int) -> torch.Tensor:
    """A seeded permutation of range(n) with no fixed point for n >= 2 (one cycle through a random order):
    shuffled_z reads z[perm[i]] where routing chose passage i."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    perm = torch.empty(n, dtype=torch.long)
    perm[order] = order.roll(-1)
    return perm


def controlled(qid: str, every: int) -> bool:
    """Whether a question gets the generated controls: all when every=1, a stable 1-in-`every` sample by qid, none at 0."""
    return every > 0 and zlib.crc32(qid.encode("utf-8")) % every == 0


# -- text store -------------------------------------------------------------------------------------------------------
def best_sentence(question: str, passage: Passage) -> str:
    """The sentence of `passage` that shares the most distinct lower-cased ``\\w+`` words with `question` (the
    earliest among ties; the whole text when it has no sentence)."""
    return most_shared(question, sentences(passage.text) or [passage.text])


def cut_to_tokens(tokenizer, text: str, budget: int) -> str:
    """The first `budget` tokens of `text` as an evidence target is tokenised, decoded back as generated ids are."""
    ids = tokenizer([" " + text], add_special_tokens=False, truncation=True, max_length=budget)["input_ids"][0]
    return tokenizer.decode(ids, skip_special_tokens=True).strip()


def text_store(tokenizer, questions: Sequence[str], routed: Sequence[Sequence[Passage]], budget: int) -> list[list[str]]:
    """Per question, per routed passage: its best-overlap sentence cut to `budget` tokens."""
    return [[cut_to_tokens(tokenizer, best_sentence(q, p), budget) for p in passages]
            for q, passages in zip(questions, routed)]


# -- no-LM readout ----------------------------------------------------------------------------------------------------
def content_slots(model) -> slice:
    """The slots of z that hold content: all but slot 0 where the layout keeps the routing key there."""
    params = model.params
    keyed = getattr(params, "has_key_slot", params.z_layout == "key+tokens")
    return slice(1, None) if keyed else slice(None)


@torch.no_grad()
def readout_ids(model, z: torch.Tensor) -> torch.Tensor:
    """(rows, content slots): for each content slot of proj(z) (z: rows × m_tokens × z_dim), the id of the LM's
    input-embedding row nearest by cosine."""
    table = F.normalize(model.lm.get_input_embeddings().weight.detach().float(), dim=-1)
    slots = F.normalize(model.memory_embeds(z)[:, content_slots(model)].float(), dim=-1)
    flat = slots.reshape(-1, slots.shape[-1]).to(table.device)
    ids = torch.cat([(flat[i : i + READOUT_CHUNK] @ table.T).argmax(-1) for i in range(0, len(flat), READOUT_CHUNK)])
    return ids.view(slots.shape[0], slots.shape[1]).cpu()


def no_lm_readout(model, tokenizer, z: torch.Tensor, budget: int) -> list[str]:
    """One text per memory in `z`: its nearest tokens, at most `budget`, decoded with special tokens skipped."""
    return [tokenizer.decode(row[:budget], skip_special_tokens=True).strip() for row in readout_ids(model, z).tolist()]


# -- hard shuffle -----------------------------------------------------------------------------------------------------
def next_ranked(routed: torch.Tensor, depth: int, deeper: torch.Tensor | None = None) -> torch.Tensor:
    """(rows, depth): the passage each rank's generation reads under hard_shuffle, the one routed just after it.

    `routed` is the routing's (rows, k) positions; when k == depth the last rank needs the (depth+1)-th routed
    passage, `deeper` (rows, ≥ depth+1: the same routing searched one deeper). A deeper search that returns no new
    passage (a memory of `depth` passages) leaves the last rank the passage routed just before it."""
    if routed.shape[1] > depth:
        return routed[:, 1 : depth + 1]
    last = []
    for row in range(routed.shape[0]):
        taken = set(routed[row, :depth].tolist())
        fresh = [int(p) for p in (deeper[row].tolist() if deeper is not None else []) if int(p) not in taken]
        last.append(fresh[0] if fresh else int(routed[row, max(depth - 2, 0)]))
    return torch.cat([routed[:, 1:depth], torch.tensor(last, dtype=routed.dtype)[:, None]], 1)


# -- query swap -------------------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return " ".join(words(text))


def swap_partners(questions: Sequence[Question], seed: int) -> dict[str, Question]:
    """For each question, the question whose text replaces its own under query_swap: within its split (ordered by
    qid), the next question along a seeded derangement's cycle whose words differ from its own. Questions alone in
    their split, or whose split has no other wording, get none."""
    by_split: dict[str, list[Question]] = {}
    for q in questions:
        by_split.setdefault(q.split, []).append(q)
    out: dict[str, Question] = {}
    for split, group in by_split.items():
        group = sorted({q.qid: q for q in group}.values(), key=lambda q: q.qid)
        if len(group) < 2:
            continue
        perm = derangement(len(group), seed + zlib.crc32(split.encode("utf-8"))).tolist()
        for i, q in enumerate(group):
            j = perm[i]
            while j != i and _norm(group[j].text) == _norm(q.text):
                j = perm[j]
            if j != i:
                out[q.qid] = group[j]
    return out


def batch_partners(questions: Sequence[Question], seed: int) -> list[Question | None]:
    """The same rule over one batch: for questions no split table knows (a caller that gave the provider none)."""
    table = swap_partners([Question(q.qid, q.text, q.answers, "batch") for q in questions], seed)
    return [table.get(q.qid) for q in questions]


# -- decoding ---------------------------------------------------------------------------------------------------------
@torch.inference_mode()
def decode_texts(model, decoder, tokenizer, queries: list[str], z: torch.Tensor, params) -> list[list[str]]:
    """Evidence texts generated from `z` (len(queries) × depth memories, grouped by query) exactly as the provider
    generates its own: the queries prefilled by `model` (the routing model), decoded by `decoder` (the model itself,
    or its int8 copy)."""
    q_ids, q_mask = encode(model, tokenizer, queries, params)
    out = prefill_queries(model, q_ids, q_mask)
    ids = generate_shared(decoder, q_ids, q_mask, z, params.max_new_tokens, tokenizer.eos_token_id,
                          params.repetition_penalty, prefilled=out)
    return texts_of(tokenizer, ids, z.shape[0] // len(queries))


def zeros_for(model, rows: int) -> torch.Tensor:
    """`rows` zero memories in the shape and dtype of the model's Z."""
    return model.z.new_zeros(rows, *model.z.shape[1:])


# -- the closed-book memory -------------------------------------------------------------------------------------------
#: Settings a closed-book memory neither trains nor answers with, held at their defaults in its settings so that
#: memories differing only in them have the same closed-book control: its z is never initialised (`key_init`) and
#: is zeros wherever the LM reads it (so how Z is stored, `z_storage`, changes no text), and no routing curve is
#: measured while it trains (`eval_every`, `early_stop_patience`).
CLOSED_BOOK_IGNORES = ("key_init", "z_storage", "eval_every", "early_stop_patience")


def closed_book_params(params):
    """The settings of a memory's closed-book control: the same, with z withheld (and CLOSED_BOOK_IGNORES at their
    defaults)."""
    defaults = type(params)()
    return params.replace(closed_book=True, **{f: getattr(defaults, f) for f in CLOSED_BOOK_IGNORES})


def settings_key(params) -> str:
    """12 hex digits of a memory's training settings (runtime settings left out): names a closed-book folder."""
    from .checkpoint import params_dict
    from .config import RUNTIME_FIELDS

    settings = {k: v for k, v in params_dict(params).items() if k not in RUNTIME_FIELDS}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]


def same_training(card: dict, params) -> bool:
    """Whether a checkpoint card was trained with `params`'s training settings (runtime settings aside; for a
    closed-book memory, CLOSED_BOOK_IGNORES too, which it does not read)."""
    from .checkpoint import params_dict
    from .config import RUNTIME_FIELDS

    wanted = json.loads(json.dumps(params_dict(params), default=str))
    saved = card.get("settings") or {}
    ignored = (*RUNTIME_FIELDS, *(CLOSED_BOOK_IGNORES if params.closed_book else ()))
    return all(saved.get(k) == v for k, v in wanted.items() if k not in ignored)


@dataclass
class ClosedBook:
    """The closed-book memory and the model that generates from it (its int8 copy when the run generates so)."""

    system: object
    generating: object
    folder: str
    trained_here: bool
