"""The `llm_memory` provider: routing top-k over Z inside the model, then one generated evidence text per routed z_i,
beside the controls that show what that text owes to z, to the LM and to the question (controls.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from rag_bench.api import EvidenceProvider, Hit, Passage, ProvidedEvidence, Question, RagBenchError, WriteCost

from . import controls as ctl
from .base import base_identity, check_environment
from .checkpoint import check_corpus, read_card
from .config import KEY_INIT_LABELS, LAYOUT_LABELS, LLMMemoryParams, RUNTIME_FIELDS, WRITE_LR, WRITE_STEPS, Z_BYTES
from .controls import controlled, derangement  # noqa: F401  (re-exported: tests and benchmarks import them here)
from .generation import encode, key_index, route_and_generate
from .routing_check import InitialRouting, comparable, load_initial
from .quantized import int8_inference_copy
from .storage import storage_ratio, z_bytes_per_passage
from .system import MemorySystem

MEMORY_DIR = "memory"
#: The controls generated beside the evidence (controls.py says what each is); the question echo needs no model
#: (metrics.py). closed_book is there when its memory was trained (`closed_book_control`).
GENERATED_CONTROLS = ctl.NAMES


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def generating_model(system: MemorySystem):
    """The model that generates a memory's evidence: the trained one, or its int8 copy (routing stays with the
    trained model; the footprint counts the trained weights)."""
    return int8_inference_copy(system.model) if system.params.inference_quantization == "int8" else system.model


class LLMMemoryProvider(EvidenceProvider):
    """LLM-as-memory: one learned z_i per passage, routing inside the LM, generated evidence.

    `prepare` trains the memory on the task's corpus and train split (or loads
    the checkpoint cached in the workdir, or ``-P checkpoint=DIR``), and the
    closed-book control's memory beside it (``-P closed_book_control=false``
    skips it); `provide` needs no retriever, index or passage text. For the
    questions chosen by `control_every`, each record also carries the controls'
    evidence texts (``info["controls"]``, controls.py) and the query swap's
    partner and verdict (``info["query_swap"]``); they stay out of the latency.

    `write` is the design's write path (write.py, as ``rag-bench memory add``):
    one fresh z_new per new passage, optimised for `steps` Adam steps with θ,
    projection and routing heads frozen, appended to Z in memory (the cached
    checkpoint is not changed).
    """

    Params = LLMMemoryParams
    description = ("LLM-as-memory: learned z_i per passage, routing in the LM, generated evidence, with text-store, "
                   "no-LM, closed-book, shuffled-z and query-swap controls (-P base=minilm|tiny|HF id)")
    version = "2"
    runtime_settings = RUNTIME_FIELDS
    handles_external_corpus = True  # prepare() refuses it: Z's bytes at that scale, and a GPU to train it
    write_takes_steps = True  # write() optimises each z_new for `steps` steps

    def refuse_external(self, task) -> None:
        """One clear error for a task whose corpus is external (nq_open_dpr's 21M passages): what Z would take."""
        n, per = task.external.passages, z_bytes_per_passage(vars(self.params))
        raise RagBenchError(
            f"llm_memory: task {task.name} has {n:,} passages, held only in prebuilt indexes. Training a memory over "
            f"them needs a GPU, and Z alone takes {n:,} x {self.params.m_tokens} x {self.params.z_dim} x "
            f"{Z_BYTES[self.params.z_storage]} B = {n * per:,} bytes ({n * per / 1e9:,.1f} GB) at these settings; "
            "it is not run at that scale. Use bm25 -P backend=pyserini or dense on this task.")

    def __init__(self, params=None):
        super().__init__(params)
        check_environment(self.params)

    def prepare(self, task, workdir: Path) -> None:
        if getattr(task, "external", None) is not None:
            self.refuse_external(task)
        folder = Path(self.params.checkpoint).expanduser() if self.params.checkpoint else workdir / MEMORY_DIR
        card = read_card(folder)
        if card is None and self.params.checkpoint:
            raise RagBenchError(f"llm_memory: -P checkpoint={folder} holds no memory checkpoint (memory.json + memory.safetensors)")
        questions = task.split("train") if "train" in task.card.splits else []
        if card is None:
            dev = task.split("dev") if "dev" in task.card.splits else []
            self.system, _ = MemorySystem.fit(self.params, task.corpus, questions, folder, dev=dev)
        else:
            check_corpus(card, folder, task.corpus, task.name)
            self.system = MemorySystem.load(folder, task.passages_by_id, runtime=self.params)
        self.folder = folder
        closed = self.closed_book(task, questions, workdir) if self.wants_closed_book() else None
        partners = ctl.swap_partners([q for split in task.card.splits for q in task.split(split)], self.system.params.seed)
        self.use(self.system, closed, partners)

    def wants_closed_book(self) -> bool:
        """Whether this run trains (or loads) the closed-book control: asked for, and some question gets controls
        (and the settings know `closed_book`)."""
        return (hasattr(self.params, "closed_book") and bool(getattr(self.params, "closed_book_control", True))
                and self.params.control_every > 0)

    def closed_book(self, task, questions: Sequence[Question], workdir: Path) -> ctl.ClosedBook:
        """The closed-book control's memory: the main memory's settings with z withheld, trained on the same corpus and
        questions (or loaded) in ``workdir/closed_book`` (under -P checkpoint, a folder named by the checkpoint's
        training settings, since the workdir does not know them)."""
        params = ctl.closed_book_params(self.system.params)
        name = ctl.CLOSED_BOOK_DIR if not self.params.checkpoint else f"{ctl.CLOSED_BOOK_DIR}-{ctl.settings_key(params)}"
        folder = workdir / name
        card = read_card(folder)
        if card is not None and not ctl.same_training(card, params):
            raise RagBenchError(f"llm_memory: the closed-book memory in {folder} was trained with other settings than "
                                f"this run's memory; delete that folder (it is retrained) or pass -P closed_book_control=false")
        if card is None:
            system, _ = MemorySystem.fit(params, task.corpus, questions, folder)
        else:
            check_corpus(card, folder, task.corpus, task.name)
            system = MemorySystem.load(folder, task.passages_by_id, runtime=self.params)
        return ctl.ClosedBook(system, generating_model(system), str(folder), card is None)

    def use(self, system: MemorySystem, closed_book: ctl.ClosedBook | None = None,
            partners: dict[str, Question] | None = None) -> None:
        """Answer from `system` (what `prepare` trained or loaded): the controls' derangement of Z and the index
        of its routing keys are made here. `closed_book` and the query swap's `partners` (by qid; a batch's own
        derangement for questions it lacks) come from `prepare`."""
        self.system = system
        self.closed = closed_book
        self.partners = partners or {}
        self.trained_splits = list(system.card.get("train", {}).get("splits", ["train"]))
        self.shuffle = derangement(len(system.doc_ids), system.params.seed)
        self.generating = generating_model(system)
        self.index = key_index(system.model, system.params.exact_routing_max)
        state = load_initial(self.folder) if comparable(system.params) and getattr(self, "folder", None) else None
        #: The untrained routing (routing_check), ranking every question beside the trained one; None where the
        #: memory kept none (trained before it was kept, or fully fine-tuned).
        self.initial = InitialRouting(state, system.model.z.device) if state is not None else None

    def provide(self, questions: Sequence[Question], k: int, evidence_k: int | None = None) -> list[ProvidedEvidence]:
        system = self.system
        texts = [q.text for q in questions]
        routed, evidence, gen_s = route_and_generate(system.model, system.tokenizer, texts, k, evidence_k or k,
                                                     system.params, self.index, self.generating)
        gen_ms = gen_s * 1000 / len(questions)
        route_ms = routed.seconds * 1000 / len(questions)
        controls = self._controls(questions, routed.positions, evidence)
        doc_ids = system.doc_ids
        for row, top in enumerate(self._initial_top(texts, k)):
            controls.setdefault(row, {})["routing_init"] = [doc_ids[i] for i in top]
        return [
            ProvidedEvidence(
                hits=[Hit(doc_ids[int(i)], float(s)) for i, s in zip(routed.positions[row], routed.scores[row])],
                evidence=evidence[row],
                timings_ms={"routing": route_ms, "generation": gen_ms, "total": route_ms + gen_ms},
                info=controls.get(row, {}),
            )
            for row in range(len(questions))
        ]

    @torch.inference_mode()
    def _initial_top(self, texts: list[str], k: int) -> list[list[int]]:
        """Each question's top-k positions under the untrained routing (none when the memory kept none); kept out of
        the latency figures."""
        if self.initial is None:
            return []
        model = self.system.model
        return self.initial.top(model, *encode(model, self.system.tokenizer, texts, self.system.params), k).tolist()

    @torch.inference_mode()
    def _controls(self, questions: Sequence[Question], routed: torch.Tensor,
                  evidence: list[list[str]]) -> dict[int, dict]:
        """The controls' evidence for the questions `control_every` picks, at the depth of the provider's own
        (`routed`: the routing's positions, `evidence`: its texts); kept out of the latency figures.

        Memories that are the same at every rank (zeroed z, closed book) are decoded once per question and repeated.
        Under hard_shuffle, generation at rank r reads the z routed at rank r+1, and the provider's own text at
        rank r+1 is exactly that generation (same question, z, model and decoding), so only the last rank, which
        reads the passage routed past the provider's depth, is decoded.
        """
        rows = [i for i, q in enumerate(questions) if controlled(q.qid, self.system.params.control_every)]
        if not rows or not evidence or not evidence[0]:
            return {}
        system, params = self.system, self.system.params
        model, tok = system.model, system.tokenizer
        depth = len(evidence[0])
        texts = [questions[i].text for i in rows]
        read = routed[rows, :depth]
        flat = read.reshape(-1).to(model.z.device)

        def decode(queries, z):
            return ctl.decode_texts(model, self.generating, tok, queries, z, params)

        out: dict[str, list[list[str]]] = {}
        out["text_store"] = ctl.text_store(tok, texts, [[system.passages[int(i)] for i in row] for row in read],
                                           params.max_new_tokens)
        readout = ctl.no_lm_readout(model, tok, model.z[flat], params.max_new_tokens)
        out["no_lm_readout"] = [readout[j * depth : (j + 1) * depth] for j in range(len(rows))]
        if self.closed is not None:
            closed = self.closed.system
            once = ctl.decode_texts(closed.model, self.closed.generating, closed.tokenizer, texts,
                                    ctl.zeros_for(closed.model, len(rows)), closed.params)
            out["closed_book"] = [row * depth for row in once]
        if len(system.doc_ids) > 1:
            deeper = None
            if routed.shape[1] <= depth:
                q_ids, q_mask = encode(model, tok, texts, params)
                deeper, _ = self.index.search(model.route_queries(model.query_hidden(q_ids, q_mask)), depth + 1)
            neighbour = ctl.next_ranked(routed[rows], depth, deeper)
            last = decode(texts, model.z[neighbour[:, -1].to(model.z.device)])
            out["hard_shuffle"] = [evidence[i][1:] + last[j] for j, i in enumerate(rows)]
        out["shuffled_z"] = decode(texts, model.z[self.shuffle.to(model.z.device)[flat]])
        out["zeroed_z"] = [row * depth for row in decode(texts, ctl.zeros_for(model, len(rows)))]
        swaps = self._query_swap([questions[i] for i in rows], questions, read[:, 0])

        result = {}
        for j, row in enumerate(rows):
            info = {"controls": {name: out[name][j] for name in ctl.NAMES if name in out}}
            if swaps[j] is not None:
                partner, text, unchanged = swaps[j]
                info["controls"]["query_swap"] = [text]
                info["query_swap"] = {"question": partner, "unchanged": unchanged}
            result[row] = info
        return result

    def _query_swap(self, chosen: Sequence[Question], batch: Sequence[Question],
                    top: torch.Tensor) -> list[tuple[str, str, bool] | None]:
        """Per chosen question: (partner qid, its rank-1 evidence regenerated from the same z with the partner's text,
        whether that text equals the one its own text gives). Both texts are decoded in one batch, so they differ
        only by the question; None where no partner exists."""
        fallback = dict(zip((q.qid for q in batch), ctl.batch_partners(batch, self.system.params.seed)))
        partners = [self.partners.get(q.qid) or fallback.get(q.qid) for q in chosen]
        keep = [j for j, p in enumerate(partners) if p is not None]
        result: list[tuple[str, str, bool] | None] = [None] * len(chosen)
        if not keep:
            return result
        model = self.system.model
        z = model.z[top[keep].to(model.z.device)]
        texts = ctl.decode_texts(model, self.generating, self.system.tokenizer,
                                 [chosen[j].text for j in keep] + [partners[j].text for j in keep],
                                 torch.cat([z, z]), self.system.params)
        own, swapped = texts[: len(keep)], texts[len(keep) :]
        for n, j in enumerate(keep):
            result[j] = (partners[j].qid, swapped[n][0], swapped[n][0] == own[n][0])
        return result

    def write(self, passages: Sequence[Passage], steps: int | None = None) -> WriteCost:
        """Memorise new passages: one z_new each, optimised with θ frozen for `steps` Adam steps (None: WRITE_STEPS)
        at WRITE_LR, appended to Z; routing then scores them beside every old z_i. In memory only: the checkpoint in
        the cache stays the memory `prepare` trained."""
        import time

        from .write import add_passages

        if getattr(self, "system", None) is None:
            raise RagBenchError("llm_memory: prepare() must run before write()")
        steps = WRITE_STEPS if steps is None else steps
        start = time.perf_counter()
        report = add_passages(self.system, passages, steps=steps, lr=WRITE_LR, seed=self.system.params.seed)
        seconds = time.perf_counter() - start
        if self.system.params.z_storage == "fp16":  # answered from Z as stored, like the trained rows (MemorySystem.fit)
            z = self.system.model.z.data
            z[-len(passages):] = z[-len(passages):].half().float()
        self.use(self.system, self.closed, self.partners)  # the routing index and the controls' derangement over the grown Z
        count = len(passages)
        return WriteCost(seconds=seconds, bytes_added=count * z_bytes_per_passage(vars(self.system.params)), steps=steps,
                         info={"lr": WRITE_LR, "loss_before": sum(report.loss_before) / count,
                               "loss_after": sum(report.loss_after) / count,
                               "gen_loss_before": sum(report.gen_loss_before) / count,
                               "gen_loss_after": sum(report.gen_loss_after) / count})

    def footprint(self) -> dict[str, int]:
        """Everything trained on this corpus that answering needs, counted: Z, projection and routing heads, and the
        LM's trained weights (LoRA and weights the base checkpoint lacked, or the whole fine-tuned LM); the public
        base checkpoint itself apart (``extra_base_model``, not counted). The closed-book control's memory is a
        control, not part of the system, and is not counted."""
        model = self.system.model
        heads = [*model.proj.parameters(), *model.route_query.parameters(), *model.route_key.parameters()]
        trained = [p for p in model.lm.parameters() if p.requires_grad]
        every = list(model.lm.parameters())
        full = len(trained) == len(every)
        parts = {
            "memory_table": model.z.numel() * Z_BYTES[self.system.params.z_storage],
            "projection_and_heads": tensor_bytes(heads),
            ("finetuned_lm" if full else "lora"): tensor_bytes(trained),
        }
        if not self.system.params.is_tiny:
            parts["extra_base_model"] = tensor_bytes(every if full else [p for p in every if not p.requires_grad])
        return parts

    def metadata(self) -> dict:
        params = self.system.params
        base = base_identity(params)
        card_base = self.system.card.get("base") or {}
        trained = sum(p.numel() for p in self.system.model.parameters() if p.requires_grad)
        names = [n for n in ctl.NAMES if n != "closed_book" or self.closed is not None]
        closed = None
        if self.closed is not None:
            train = self.closed.system.card.get("train") or {}
            closed = {"trained_with_this_run": self.closed.trained_here, "steps": train.get("steps"),
                      "seconds": train.get("seconds")}
        return {
            "trained_on_corpus": True,
            "trained_splits": self.trained_splits,
            "parameters_trained": int(trained),
            "base_model": base.get("id") or ("tiny (from a config)" if params.is_tiny else params.base),
            "base_revision": card_base.get("revision") or card_base.get("fingerprint"),
            "finetune": "lora" if params.use_lora else "full",
            "controls_every": params.control_every,
            "controls": {n: ctl.DESCRIPTIONS[n] for n in names},
            "controls_out_of_distribution": list(ctl.OUT_OF_DISTRIBUTION),
            "closed_book_memory": closed,
            "routing_index": self.index.method,
            "z_layout": f"{params.z_layout}: {LAYOUT_LABELS[params.z_layout]}",
            "evidence_target": params.evidence_target,
            "key_init": KEY_INIT_LABELS[params.key_init] if params.has_key_slot else "the mean of z's slots",
            "routing_init_compared": self.initial is not None,
            **storage_ratio(z_bytes_per_passage(vars(self.system.params)), self.system.passages),
        }

    def close(self) -> None:
        self.initial = None
        self.system = self.generating = self.closed = None
        self.index = None
