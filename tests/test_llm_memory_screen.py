"""The int8 screen of the decoding head chooses the reference's next token: its bound holds, and rows it cannot
decide are re-scored in fp32 (or, when crowded, get the whole product)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rag_bench_plugins.llm_memory import screen
from rag_bench_plugins.llm_memory.generation import penalise_repeats_dense
from rag_bench_plugins.llm_memory.quantized import int8_inference_copy

pytestmark = pytest.mark.skipif(not screen.available(), reason="this torch has no CPU int8 product (torch._int_mm)")

VOCAB, DIM = 3000, 48


def head(seed: int, bias: bool = True, outlier: float = 4.0) -> nn.Linear:
    """A projection like a trained head's: small weights with one column of a wider range, and a bias."""
    generator = torch.Generator().manual_seed(seed)
    projection = nn.Linear(DIM, VOCAB, bias=bias)
    with torch.no_grad():
        projection.weight.copy_(torch.randn(VOCAB, DIM, generator=generator) * 0.1)
        projection.weight[:, 5] *= outlier
        if bias:
            projection.bias.copy_(torch.randn(VOCAB, generator=generator) * 0.3)
    return projection


def reference(projection: nn.Linear, x: torch.Tensor, generated: torch.Tensor | None, penalty: float) -> torch.Tensor:
    logits = projection(x)
    if generated is not None:
        logits = penalise_repeats_dense(logits, generated, penalty)
    return logits.argmax(-1)


@pytest.mark.parametrize("bias", [True, False])
def test_the_screen_is_within_its_bound_of_the_fp32_logits(bias):
    projection = head(0, bias)
    screened = screen.ScreenedHead(lambda h: h, projection)
    x = torch.randn(40, DIM, generator=torch.Generator().manual_seed(1)) * 3
    x[3] *= 20  # a row far larger than the others: its own scale
    x[:, 7] *= 6  # an input dimension of a wider range
    with torch.no_grad():
        values, unit, bound = screened.screen(x)
        exact = projection(x)
    distance = (values[:, :VOCAB].double() * unit[:, None].double() - exact.double()).abs()
    assert (distance <= (bound * unit)[:, None].double()).all()
    assert (distance.amax(1) > 0.05 * bound * unit).all()  # the bound is not vacuous: within 20x of the error
    assert (values[:, VOCAB:] == screen.NEVER).all()  # padding to whole blocks is never chosen


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_the_screened_choice_is_the_references_argmax(penalty):
    projection = head(2)
    screened = screen.ScreenedHead(lambda h: h, projection)
    x = torch.randn(64, DIM, generator=torch.Generator().manual_seed(3))
    generated = None
    with torch.no_grad():
        for step in range(6):
            chosen = screened.choose(x, generated, penalty)
            assert torch.equal(chosen, reference(projection, x, generated, penalty))
            chosen = chosen[:, None]
            generated = chosen if generated is None else torch.cat([generated, chosen], 1)
            x = x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(10 + step))
    assert screened.decided > 0


def test_ties_and_crowded_rows_are_decided_in_fp32_as_argmax_decides_them():
    # Weights and inputs on a coarse binary grid: every logit is exact in fp32 in any order of summation, so ties are
    # true ties, which argmax breaks towards the lowest id.
    generator = torch.Generator().manual_seed(4)
    projection = nn.Linear(DIM, VOCAB)
    with torch.no_grad():
        projection.weight.copy_(torch.randint(-2, 3, (VOCAB, DIM), generator=generator) * 0.25)
        projection.bias.copy_(torch.randint(-2, 3, (VOCAB,), generator=generator) * 0.5)
        for best, tied in ((2500, [100]), (2999, range(1000, 1000 + 2 * screen.CANDIDATES))):
            # every weight at the grid's edge and the highest bias: the best row for an input along it, strictly
            projection.weight[best] = torch.randint(0, 2, (DIM,), generator=generator) - 0.5
            projection.bias[best] = 1.0
            projection.weight[list(tied)] = projection.weight[best].clone()  # ids tied with it
            projection.bias[list(tied)] = 1.0
    screened = screen.ScreenedHead(lambda h: h, projection)
    x = torch.randint(-2, 3, (12, DIM), generator=generator) * 0.5
    x[0] = projection.weight[2500] * 4  # best at ids 100 and 2500
    x[1] = projection.weight[2999] * 4  # best at ids 1000..1127 and 2999
    generated = torch.tensor([[2500, 7]] * 12)
    with torch.no_grad():
        for penalised in (None, generated):
            chosen = screened.choose(x, penalised, 1.3)
            assert torch.equal(chosen, reference(projection, x, penalised, 1.3))
            assert chosen[0] == 100 and chosen[1] == 1000
    assert screened.rescored > 0 and screened.full > 0


def test_the_model_screens_its_head_and_makes_the_screen_anew_when_the_head_changes(nq_5k):
    from rag_bench_plugins.llm_memory.config import LLMMemoryParams
    from rag_bench_plugins.llm_memory.evaluation import gold_slice
    from rag_bench_plugins.llm_memory.system import MemorySystem

    passages, _ = gold_slice(nq_5k.corpus, nq_5k.split("train"), 4)
    params = LLMMemoryParams(base="tiny", tokenizer="minilm", tiny_hidden=32, tiny_layers=1, tiny_heads=2,
                             tiny_kv_heads=1, tiny_intermediate=64, m_tokens=3, z_dim=16, route_dim=16, threads=1)
    model = MemorySystem.build(params, passages).model
    first = model.screened_head()
    assert first is not None and model.screened_head() is first
    with torch.no_grad():
        model.lm.get_output_embeddings().weight.mul_(2)  # an optimiser step changes the weights in place
    second = model.screened_head()
    assert second is not first
    with torch.inference_mode():  # a head loaded under inference mode keeps no version counter
        model.lm.get_output_embeddings().weight = nn.Parameter(model.lm.get_output_embeddings().weight.clone())
        third = model.screened_head()
        assert third is not second and model.screened_head() is third
        model.lm.get_output_embeddings().weight.mul_(2)
        assert model.screened_head() is not third
    assert int8_inference_copy(model).screened_head() is None  # a quantised head decodes through its own product
