"""The span-extraction model: an encoder with a start/end head and a passage-relevance head (DPR's reader).

Input is `[CLS] question [SEP] passage [SEP]`; a passage longer than
`max_length` is read in overlapping windows. A window's passage score is the
relevance head on `[CLS]`, its span score `start_logit + end_logit` of the
best span of at most `max_answer_tokens` tokens inside the passage; a
candidate answer scores `passage_weight * passage score + span score`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn


class SpanReaderModel(nn.Module):
    """`encoder` (a Hugging Face `AutoModel`) plus a 2-way span head and a 1-way relevance head."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.span = nn.Linear(hidden, 2)
        self.relevance = nn.Linear(hidden, 1)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.heads(self.encoder(**kwargs).last_hidden_state)

    def heads(self, hidden):
        """(start logits, end logits, passage logit) from the encoder's last hidden states."""
        start, end = self.span(hidden).unbind(-1)
        return start, end, self.relevance(hidden[:, 0]).squeeze(-1)

    def layers(self) -> Any:
        """The encoder's transformer layers where it is BERT-like (`encoder.encoder.layer`), else None."""
        inner = getattr(self.encoder, "encoder", None)
        return getattr(inner, "layer", None)

    def lower(self, frozen: int, input_ids, attention_mask, token_type_ids=None):
        """Hidden states after the embeddings and the first `frozen` layers (no gradient)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        with torch.no_grad(), _swapped(self.encoder, layers=self.layers()[:frozen]):
            return self.encoder(**kwargs).last_hidden_state

    def upper(self, frozen: int, hidden, attention_mask):
        """The heads' logits from hidden states after layer `frozen`, through the remaining layers.

        The encoder's own forward runs with its embeddings replaced by the given hidden states and its layer
        list cut to the layers above `frozen`, so the attention mask is built as the installed transformers
        version builds it.
        """
        with _swapped(self.encoder, layers=self.layers()[frozen:], embeddings=_Given()):
            return self.heads(self.encoder(inputs_embeds=hidden, attention_mask=attention_mask).last_hidden_state)


class _Given(nn.Module):
    """Stands in for an encoder's embeddings: hands back the hidden states passed as `inputs_embeds`."""

    def forward(self, *args, inputs_embeds=None, **kwargs):
        return inputs_embeds


@contextmanager
def _swapped(encoder: nn.Module, layers: nn.ModuleList, embeddings: nn.Module | None = None):
    """`encoder` with its layer list (and embeddings) replaced for the duration of the block."""
    inner = encoder.encoder
    kept_layers, kept_embeddings = inner.layer, encoder.embeddings
    inner.layer = layers
    if embeddings is not None:
        encoder.embeddings = embeddings
    try:
        yield
    finally:
        inner.layer = kept_layers
        encoder.embeddings = kept_embeddings


@dataclass
class Window:
    """One tokenised (question, passage window) pair; `offsets` map tokens to characters of the passage."""

    input_ids: list[int]
    token_type_ids: list[int] | None
    offsets: list[tuple[int, int] | None]  # None: not a passage token
    passage: int = 0  # the evidence text's index
    starts: tuple[int, ...] = ()  # gold start tokens (training)
    ends: tuple[int, ...] = ()
    positive: bool = False


def tokenize_windows(tokenizer: Any, question: str, passage: str, max_length: int, stride: int) -> list[Window]:
    """The windows of `passage` after `question`, each at most `max_length` tokens, overlapping by `stride`."""
    enc = tokenizer(question, passage, truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    windows = []
    for i, ids in enumerate(enc["input_ids"]):
        seq = enc.sequence_ids(i)
        offsets = [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq)]
        types = enc["token_type_ids"][i] if "token_type_ids" in enc else None
        windows.append(Window(list(ids), list(types) if types is not None else None, offsets))
    return windows


def collate(windows: Sequence[Window], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors for a list of windows, plus the mask of passage tokens."""
    width = max(len(w.input_ids) for w in windows)
    ids = torch.full((len(windows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(windows), width), dtype=torch.long)
    types = torch.zeros((len(windows), width), dtype=torch.long)
    context = torch.zeros((len(windows), width), dtype=torch.bool)
    for row, w in enumerate(windows):
        n = len(w.input_ids)
        ids[row, :n] = torch.tensor(w.input_ids)
        mask[row, :n] = 1
        if w.token_type_ids is not None:
            types[row, :n] = torch.tensor(w.token_type_ids)
        context[row, :n] = torch.tensor([o is not None for o in w.offsets])
    out = {"input_ids": ids, "attention_mask": mask, "context": context}
    if windows[0].token_type_ids is not None:
        out["token_type_ids"] = types
    return out


def best_span(start: torch.Tensor, end: torch.Tensor, context: torch.Tensor, max_tokens: int) -> tuple[float, int, int]:
    """(score, start, end) of the best span inside `context` of at most `max_tokens` tokens; score -inf if none."""
    n = start.shape[0]
    scores = start[:, None] + end[None, :]
    i = torch.arange(n)
    allowed = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_tokens) & context[:, None] & context[None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    flat = int(torch.argmax(scores))
    s, e = divmod(flat, n)
    return float(scores[s, e]), s, e
