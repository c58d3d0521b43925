"""The opt-in int8 inference copy of a trained memory model (``-P inference_quantization=int8``).

Every linear layer of the LM (the body's and the head's, LoRA merged in first)
becomes a dynamically quantised int8 layer (torch's eager dynamic quantization,
fbgemm on x86 CPUs, its default settings: int8 weights with one scale per
matrix, activations quantised per call). Z, the projection and the routing
heads stay fp32, and the provider routes, and prefills the query, with the
trained fp32 model: only the generation reads the copy. Its texts are not
those of the fp32 model, so a run with it is its own configuration (the
setting enters the run's id), scored beside its own controls, which read the
same copy.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from rag_bench.api import RagBenchError

from .model import MemoryModel


def int8_inference_copy(model: MemoryModel) -> MemoryModel:
    """A copy of `model` for CPU inference with the LM's linear layers in int8, sharing `model`'s Z; `model`
    itself is left as it is (its footprint and checkpoint are the trained fp32 weights)."""
    if model.z.device.type != "cpu":
        raise RagBenchError("llm_memory: inference_quantization=int8 runs on CPU (fbgemm); on a GPU use "
                            "quantization=4bit, or inference_quantization=none")
    quantize_dynamic = getattr(getattr(torch.ao, "quantization", None), "quantize_dynamic", None)
    if quantize_dynamic is None or not set(torch.backends.quantized.supported_engines) & {"fbgemm", "x86", "onednn"}:
        raise RagBenchError(f"llm_memory: torch {torch.__version__} has no eager int8 dynamic quantization with a CPU "
                            "engine (fbgemm, x86 or onednn) for inference_quantization=int8; use "
                            "inference_quantization=none, or torch 2.13 (constraints-lock.txt)")
    quantised = copy.deepcopy(model, memo={id(model.z): model.z})  # Z is shared: only read at inference
    lm = quantised.lm
    merge_lora(lm)
    lm.eval()
    with warnings.catch_warnings():  # torch 2.13's notices that eager quantization moves to torchao: it works here
        # (matched by message: the notice is attributed to this caller, not to torch.ao)
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
        quantize_dynamic(lm, {nn.Linear}, dtype=torch.qint8, inplace=True)
    quantised.find_parts()
    return quantised.eval()


def merge_lora(lm: nn.Module) -> None:
    """Fold every LoRA adapter peft injected into `lm` into its base layer's weights, and put the base layer back
    in the adapter's place (the int8 conversion then quantises the merged weights)."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:  # no peft: no adapters
        return
    for name, module in list(lm.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(lm.get_submodule(parent) if parent else lm, child, module.get_base_layer())
