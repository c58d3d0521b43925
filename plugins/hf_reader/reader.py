"""The `hf` reader: a local transformers chat model, greedy decoding, the shared prompt template."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

from rag_bench.api import (
    Question, RagBenchError, Reader, ReaderAnswer, clean_answer, load_template, params_to_dict, weights_sha256,
)

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class HFReaderParams:
    """Settings of the `hf` reader (`--reader hf:MODEL`, `-R key=value`).

    `model` is a Hugging Face model id or a local folder; `tokenizer`
    defaults to it. A tokenizer without a chat template needs one from
    `chat_template` (a Jinja file). Decoding is greedy (temperature 0).
    """

    model: str | None = None
    tokenizer: str | None = None
    chat_template: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    max_new_tokens: int = 32
    batch_size: int = 8
    prompt_file: str | None = None
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r}: expected one of {', '.join(DTYPES)}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be at least 1")


class HFReader(Reader):
    """Answers with a local causal LM through its tokenizer's chat template, a batch at a time."""

    Params = HFReaderParams
    description = "local transformers chat model (greedy decoding)"
    runtime_settings: ClassVar[tuple[str, ...]] = ("device", "batch_size")

    def __init__(self, params: Any = None):
        super().__init__(params)
        if not self.params.model:
            raise RagBenchError("the hf reader needs a model: --reader hf:MODEL_ID_OR_FOLDER")
        self.template = load_template(self.params.prompt_file)
        self._model: Any = None
        self._tokenizer: Any = None

    def settings(self) -> dict[str, Any]:
        return {**params_to_dict(self.params), **self.template.manifest()}

    def preflight(self) -> None:
        self._load()

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        p = self.params
        try:
            tokenizer = AutoTokenizer.from_pretrained(p.tokenizer or p.model, trust_remote_code=p.trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(p.model, dtype=p.dtype if p.dtype == "auto" else getattr(torch, p.dtype),
                                                         trust_remote_code=p.trust_remote_code)
        except (OSError, ValueError) as exc:  # missing folder, unknown or malformed model id
            raise RagBenchError(f"hf reader: cannot load {p.model!r} ({str(exc).splitlines()[0]}); pass a model id or folder") from None
        if p.chat_template:
            try:
                tokenizer.chat_template = Path(p.chat_template).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise RagBenchError(f"hf reader: cannot read chat_template {p.chat_template} ({exc.strerror})") from None
        if not tokenizer.chat_template:
            raise RagBenchError(f"hf reader: the tokenizer of {p.tokenizer or p.model!r} has no chat template; pass -R chat_template=FILE.jinja")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.padding_side = "left"  # generation continues each prompt at its right end
        device = ("cuda" if torch.cuda.is_available() else "cpu") if p.device == "auto" else p.device
        self._model = model.to(device).eval()
        self._tokenizer = tokenizer

    def fingerprint(self) -> dict[str, Any]:
        """The shared fingerprint with the loaded weights' sha256 and the hub revision they came from (None for a
        local folder): two runs of one model id at different revisions or dtypes are different readers."""
        self._load()
        revision = getattr(self._model.config, "_commit_hash", None)
        return {**super().fingerprint(), "weights_sha256": weights_sha256(self._model), "revision": revision}

    def prompt(self, question: str, evidence: Sequence[str]) -> str:
        """The model's input text: the shared template as one user turn, in the tokenizer's chat format."""
        self._load()
        messages = self.template.messages(question, evidence)
        return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def read(self, questions: Sequence[Question], evidence: Sequence[Sequence[str]]) -> list[ReaderAnswer]:
        self._load()
        prompts = [self.prompt(q.text, ev) for q, ev in zip(questions, evidence)]
        answers: list[ReaderAnswer] = []
        for start in range(0, len(prompts), self.params.batch_size):
            answers += self._generate(prompts[start : start + self.params.batch_size])
        return answers

    def _generate(self, prompts: list[str]) -> list[ReaderAnswer]:
        import torch

        tok, model = self._tokenizer, self._model
        t0 = time.perf_counter()
        inputs = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            output = model.generate(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], do_sample=False, max_new_tokens=self.params.max_new_tokens,
                                    pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        latency = (time.perf_counter() - t0) * 1000 / len(prompts)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        answers = []
        for row, mask in zip(new_tokens, inputs["attention_mask"]):
            generated = row[row != tok.pad_token_id] if tok.pad_token_id is not None else row
            raw = tok.decode(generated, skip_special_tokens=True)
            usage = {"prompt_tokens": int(mask.sum()), "completion_tokens": int(generated.numel())}
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            answers.append(ReaderAnswer(answer=clean_answer(raw), usage=usage, info={"latency_ms": latency, "raw_answer": raw}))
        return answers

    def close(self) -> None:
        self._model, self._tokenizer = None, None
