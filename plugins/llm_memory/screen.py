"""The greedy choice of the next token through an int8 screen of the vocabulary with a proven error bound.

Greedy decoding needs the argmax of the penalised logits, not the logits. The
head's vocabulary projection (30,522 × 384 for MiniLM) is the biggest product
of each decoding step; an int8 product of the same shape (`torch._int_mm`:
exact int32 sums of int8 products) costs a fifth of it on this project's CPU
(AVX-512 VNNI; docs/BENCHMARKS.md). Each step

1. appends the bias's input (a constant, `bias_input`) to the head's input
   and rounds each row to int8 on its own scale (``x = s·q + d``); the
   projection's weights, the bias divided by that constant as one more
   column, were rounded once to int8 on one scale (``w_v = t·p_v + e_v``);
   the screen is ``s·t·(q·p_v)``, whole numbers of the row's unit ``s·t``;
2. bounds, per row, its distance from the fp32 logits: ``w_v·x − s·t·q·p_v =
   s·q·e_v + d·w_v``, so at most ``‖s·q‖·max‖e_v‖ + ‖d‖·max‖w_v‖``
   (Cauchy–Schwarz), plus the fp32 rounding of both sides (`margin`);
3. writes the generated ids' penalised logits in exactly (a gathered fp32
   product and CTRL's penalty on it, rounded to whole units), and
4. keeps every id whose screen is within twice the bound of the row's best: the
   reference's argmax is among them. A row with one such id is decided by the
   screen; the others by their candidates' fp32 logits (the first of the
   highest, as `argmax`), or, past `CANDIDATES` of them, by the row's whole
   fp32 product.

Before rounding, each of the projection's input dimensions is scaled by a power
of two (the weights' column j by ``c_j``, the input by ``1/c_j``: exact in
fp32), which evens out the columns' ranges: one column of MiniLM's trained
head spans 1.05 against 0.24–0.29 for the rest, and would otherwise set the
weights' scale; on steps of nq_5k test decoding it decides 95% of rows by
itself against 90% without.

A row is decided by the screen only where the reference's own fp32 logits
cannot order the ids otherwise, so its token is the reference's; where
candidates are re-scored, two logits within fp32 rounding of each other could
in principle come out in the other order (their products sum in another
order), which the decoding tests and `benchmarks/llm_memory_inference.py`
check on the data.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .generation import penalise, penalise_repeats

#: fp32 unit round-off.
UNIT = 2.0 ** -24
#: Vocabulary columns per block of the screen's argmax: a block's maxima, then the best block's argmax, cost a
#: tenth of one argmax over the vocabulary.
BLOCK = 512
#: Candidates re-scored in fp32 per open row; a row with more gets its whole fp32 product.
CANDIDATES = 64
#: int8's symmetric range.
LEVELS = 127
#: The screen of the columns that pad the vocabulary to whole blocks (never the best).
NEVER = -(2 ** 30)


@functools.cache
def available() -> bool:
    """Whether this torch has a CPU int8 matrix product with int32 sums (`torch._int_mm`); asked once."""
    if not hasattr(torch, "_int_mm"):
        return False
    try:
        torch._int_mm(torch.ones(17, 8, dtype=torch.int8), torch.ones(8, 8, dtype=torch.int8))
    except (RuntimeError, NotImplementedError):
        return False
    return True


def padded_vocabulary(vocab: int) -> int:
    """The screen's vocabulary: `vocab` padded to whole `BLOCK`s."""
    return math.ceil(vocab / BLOCK) * BLOCK


class ScreenedHead:
    """A head's greedy next-token choice through an int8 screen of its vocabulary projection (module docstring).

    `before` is what the head does before the projection (BERT's transform; identity for a decoder LM),
    `projection` an fp32 `nn.Linear` on CPU. `decided` counts the rows the screen decided and `rescored` the
    others (of which `full` by the whole product).
    """

    def __init__(self, before, projection: nn.Linear):
        weight = projection.weight.detach()
        vocab, dim = weight.shape
        self.before = before
        self.weight = weight
        self.bias = weight.new_zeros(vocab) if projection.bias is None else projection.bias.detach()
        columns = weight.abs().amax(0).clamp(min=torch.finfo(weight.dtype).tiny)
        self.column_scale = torch.exp2(torch.round(torch.log2(columns.median() / columns)))
        balanced = weight * self.column_scale
        self.bias_max = float(self.bias.abs().max())
        #: The bias is the weights' last column, its input `bias_input` (so that it fits the weights' range).
        self.bias_input = max(self.bias_max / float(balanced.abs().max()), 1e-30)
        balanced = torch.cat([balanced, (self.bias / self.bias_input)[:, None]], 1)
        self.scale = float(balanced.abs().max()) / LEVELS or 1.0
        self.blocks = padded_vocabulary(vocab) // BLOCK
        levels = (balanced / self.scale).round().clamp(-LEVELS, LEVELS).to(torch.int8)
        self.levels = torch.cat([levels, levels.new_zeros(self.blocks * BLOCK - vocab, dim + 1)])  # whole blocks
        self.vocab = vocab
        self.weight_norm = float(balanced.norm(dim=1).max())
        self.rounding_norm = float((balanced - levels.float() * self.scale).norm(dim=1).max())
        self.decided = self.rescored = self.full = 0

    def screen(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The screen of `x` (rows, dim) in integer units (rows, padded vocabulary), each row's unit, and per row
        a bound on the screen's distance, in its units, from the fp32 logits."""
        balanced = torch.cat([x / self.column_scale, x.new_full((x.shape[0], 1), self.bias_input)], 1)
        step = (balanced.abs().amax(1, keepdim=True) / LEVELS).clamp_(min=torch.finfo(x.dtype).tiny)
        q = (balanced / step).round_().clamp_(-LEVELS, LEVELS)
        rounded = q * step
        screen = torch._int_mm(q.to(torch.int8), self.levels.t())
        screen[:, self.vocab :] = NEVER
        unit = step[:, 0] * self.scale
        bound = rounded.norm(dim=1) * self.rounding_norm + (balanced - rounded).norm(dim=1) * self.weight_norm
        return screen, unit, bound / unit + self.margin(x, unit)

    def margin(self, x: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """What rounding adds to the bound, in screen units: the penalised logits' rounding to whole units (half a
        unit), and fp32 rounding: the reference product's sum over `dim` terms (at most dim·u·‖x‖·max‖w_v‖, the
        column scaling exact) and the screen's few operations, with room to spare."""
        size = x.norm(dim=1) * (self.weight_norm + self.rounding_norm) + self.bias_max
        return 1.0 + (4 * (x.shape[1] + 8) * UNIT * size + 1e-6) / unit

    def exact(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """fp32 logits of the ids `ids` (rows, n) for each row of `x` (rows, dim)."""
        return torch.bmm(self.weight[ids], x.unsqueeze(-1)).squeeze(-1) + self.bias[ids]

    def choose(self, hidden: torch.Tensor, generated: torch.Tensor | None, penalty: float) -> torch.Tensor:
        """The greedy next id of each row of `hidden` (rows, hidden) under CTRL's repetition `penalty` on the ids
        in `generated` (rows, steps so far; None before the first step): the reference decoding's ids."""
        x = self.before(hidden).float()
        screen, unit, bound = self.screen(x)
        penalised = generated is not None and penalty != 1.0
        if penalised:
            values = penalise(self.exact(x, generated), penalty)
            screen.scatter_(1, generated, torch.round(values / unit[:, None]).clamp(NEVER, -NEVER).to(torch.int32))
        rows = torch.arange(x.shape[0])
        blocks = screen.view(x.shape[0], self.blocks, BLOCK)
        maxima = blocks.amax(2)
        block = maxima.argmax(1)
        inside = blocks[rows, block]
        offset = inside.argmax(1)
        choice = block * BLOCK + offset
        best = maxima[rows, block]
        maxima[rows, block] = NEVER
        inside[rows, offset] = NEVER
        second = torch.maximum(maxima.amax(1), inside.amax(1))
        floor = best.double() - 2 * bound.double()
        open_rows = (second.double() >= floor).nonzero().flatten()
        self.decided += x.shape[0] - len(open_rows)
        if len(open_rows):
            self.rescored += len(open_rows)
            choice[open_rows] = self.rescore(x[open_rows], screen[open_rows], floor[open_rows],
                                             None if not penalised else generated[open_rows], penalty)
        return choice

    def rescore(self, x: torch.Tensor, screen: torch.Tensor, floor: torch.Tensor, generated: torch.Tensor | None,
                penalty: float) -> torch.Tensor:
        """The choice of rows the screen left open: the first of the highest fp32 logits among each row's
        candidates (screen at or above `floor`), or of the row's whole product past `CANDIDATES` of them."""
        top = screen.topk(min(CANDIDATES, self.vocab), dim=1)
        ids = top.indices
        values = self.exact(x, ids)
        if generated is not None:
            seen = (ids[:, :, None] == generated[:, None, :]).any(-1)
            values = torch.where(seen, penalise(values, penalty), values)
        values = values.masked_fill(top.values.double() < floor[:, None], -math.inf)
        highest = values.amax(1, keepdim=True)
        choice = torch.where(values == highest, ids, self.vocab).amin(1)
        crowded = (top.values[:, -1].double() >= floor).nonzero().flatten()
        if len(crowded):
            self.full += len(crowded)
            logits = torch.nn.functional.linear(x[crowded], self.weight, self.bias)
            if generated is not None:
                logits = penalise_repeats(logits, generated[crowded], penalty)
            choice[crowded] = logits.argmax(1)
        return choice
