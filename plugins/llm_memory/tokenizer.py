"""Tokenizers for the tiny base: the offline MiniLM WordPiece vocabulary, or a byte-level BPE trained on the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from rag_bench.api import RagBenchError

from .base_source import base_path, minilm_path

TOKENIZER_DIR = "tokenizer"
SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_corpus_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE (lossless, cased) trained on `texts` with the `tokenizers` library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token=SPECIALS["unk_token"]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, **SPECIALS)


def build_tokenizer(params, texts: Iterable[str]):
    """The tokenizer for `params.base`: the base model's own, or the tiny choice."""
    from transformers import AutoTokenizer

    if not params.is_tiny:
        try:
            tok = AutoTokenizer.from_pretrained(base_path(params))
        except (OSError, ValueError) as exc:
            raise RagBenchError(
                f"llm_memory: cannot load base {params.base!r} ({type(exc).__name__}); pass a Hugging Face model id "
                "available offline (HF_HOME cache) or a local model folder, or -P base=tiny"
            ) from None
    elif params.tokenizer == "corpus":
        tok = train_corpus_tokenizer(texts, params.tokenizer_vocab)
    else:
        tok = AutoTokenizer.from_pretrained(minilm_path())
    return ensure_special_tokens(tok)


def ensure_special_tokens(tok):
    """Every base needs an end-of-evidence token and a pad token."""
    if tok.eos_token is None:
        tok.eos_token = tok.sep_token or SPECIALS["eos_token"]
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def read_token_id(tok) -> int:
    """The token that closes the memory prefix: the base's own start token (BOS, or BERT's [CLS]), else EOS."""
    for token_id in (tok.bos_token_id, getattr(tok, "cls_token_id", None), tok.eos_token_id):
        if token_id is not None:
            return token_id
    raise RagBenchError("llm_memory: the tokenizer has neither a BOS/CLS nor an EOS token")


def save_tokenizer(tok, folder: Path) -> None:
    tok.save_pretrained(str(folder / TOKENIZER_DIR))


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return ensure_special_tokens(AutoTokenizer.from_pretrained(str(folder / TOKENIZER_DIR)))
