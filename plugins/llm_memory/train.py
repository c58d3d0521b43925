"""The multi-task training loop (generation + routing losses) under Hugging Face accelerate, resumable from its last checkpoint.

Under ``accelerate launch`` the same loop runs data-parallel over GPUs,
machines or CPU processes: accelerate prepares model, optimiser, data loader
and scheduler, and handles gradient accumulation and mixed precision. The
settings mean the same whatever the process count: `batch_size` is the
batch of one optimiser step, split across the processes (each computes its
share and the gradients are averaged), and `max_train_steps` counts those
global steps, so a run sees the same examples in the same order on one
process or on eight.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from rag_bench.api import RagBenchError, write_json_atomic

from .checkpoint import read_weights, write_weights
from .data import Collator, Encoded, schedule, total_steps
from .model import usage_entropy

STATE = "state.json"
LOG_EVERY = 10
ENTROPY_WINDOW = 50
MEMORY_PARTS = ("z", "proj.", "route_query.", "route_key.")


@dataclass
class TrainReport:
    """What a training run did: optimiser steps, wall time, the loss log, and where it resumed."""

    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0
    interrupted: bool = False
    stopped_early: bool = False
    processes: int = 1
    device: str = "cpu"


def param_groups(model, params) -> list[dict]:
    """LoRA/LM weights at lr_llm; Z, projection and routing heads at lr_z."""
    memory, llm = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (memory if name.startswith(MEMORY_PARTS) else llm).append(p)
    groups = [{"params": memory, "lr": params.lr_z, "weight_decay": 0.0}]
    if llm:
        groups.append({"params": llm, "lr": params.llm_lr, "weight_decay": params.weight_decay})
    return groups


def lr_lambda(warmup: int, steps: int):
    """Linear warm-up, then linear decay to 10% at the last step."""
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 1.0 - 0.9 * (step - warmup) / max(1, steps - warmup)
    return factor


def save_state(folder: Path, model, optimizer, scheduler, params, step: int, history: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_weights(model, params, folder / "weights.safetensors")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
               folder / "optimizer.pt")
    write_json_atomic(folder / STATE, {"step": step, "history": history})


def rng_state() -> dict:
    """The random state dropout draws from: torch's CPU generator, and every CUDA device's."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state) -> None:
    if isinstance(state, torch.Tensor):  # a state saved before CUDA's was kept
        state = {"cpu": state, "cuda": []}
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def has_state(folder: Path) -> bool:
    """Whether `folder` holds an interrupted training's checkpoint (`train` resumes from it)."""
    return (folder / STATE).is_file()


def load_state(folder: Path, model, optimizer, scheduler) -> tuple[int, list, dict | None]:
    """Step, loss log and random state of the last checkpoint in `folder` (weights, optimiser and scheduler are
    loaded into the objects given); (0, [], None) when there is none."""
    if not has_state(folder):
        return 0, [], None
    state = json.loads((folder / STATE).read_text(encoding="utf-8"))
    read_weights(model, folder / "weights.safetensors")
    saved = torch.load(folder / "optimizer.pt", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    return state["step"], state["history"], saved["rng"]


def process_state():
    """This process's place in a launch (accelerate's PartialState), set up for the device it trains on: on a machine
    without CUDA the processes of ``accelerate launch`` / ``torchrun`` form a CPU (gloo) group only when asked so
    from the first call on (accelerate 1.x)."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def make_accelerator(params):
    """The accelerate state of a training run: bf16 autocast on GPU, and each process taking its slice of every
    batch (``split_batches``), so that `batch_size` and `max_train_steps` are global."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration

    cuda = torch.cuda.is_available()
    accelerator = Accelerator(gradient_accumulation_steps=params.grad_accum, cpu=not cuda,
                              mixed_precision="bf16" if cuda else "no",
                              dataloader_config=DataLoaderConfiguration(split_batches=True))
    if params.batch_size % accelerator.num_processes:
        raise RagBenchError(f"llm_memory: batch_size={params.batch_size} is the batch of one optimiser step, split "
                            f"across the {accelerator.num_processes} processes; pick a multiple of "
                            f"{accelerator.num_processes}")
    return accelerator


def train(model, encoded: Sequence[Encoded], params, state_dir: Path, pad_id: int,
          stop_after: int | None = None, progress: bool = True,
          on_step: Callable[[int, torch.nn.Module], None] | None = None,
          stop_when: Callable[[], bool] | None = None) -> TrainReport:
    """Train `model` on `encoded`; resumes from `state_dir` when an earlier run left a checkpoint there.

    `stop_after` ends the loop after that many optimiser steps without saving,
    as a kill would (used to test resumption). `on_step(step, model)` is called
    after every optimiser step with the unwrapped model, in every process.
    `stop_when()`, asked after `on_step`, ends training early (completed, not
    interrupted) when it is true in any process.
    """
    accelerator = make_accelerator(params)
    steps = total_steps(len(encoded), params)
    order = schedule(len(encoded), params, steps)
    loader = DataLoader([encoded[i] for i in order], batch_size=params.batch_size, shuffle=False,
                        collate_fn=Collator(pad_id, params.hard_negatives))
    optimizer = torch.optim.AdamW(param_groups(model, params))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(params.warmup_steps, steps))
    done, history, rng = load_state(state_dir, model, optimizer, scheduler)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    if done:
        loader = accelerator.skip_first_batches(loader, done * params.grad_accum)
    report = TrainReport(steps=done, seconds=0.0, history=history, resumed_from=done,
                         processes=accelerator.num_processes, device=accelerator.device.type)
    shared = accelerator.num_processes > 1
    recent = collections.deque(maxlen=ENTROPY_WINDOW)
    num_passages = accelerator.unwrap_model(model).z.shape[0]
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=steps, initial=done, desc="llm_memory train", unit="step", disable=not progress or not accelerator.is_main_process)
    sums = collections.Counter()
    for batch in loader:
        if rng is not None:
            # only now: starting to iterate the loader draws from the generator, which the interrupted run did at
            # step 0, before the state was saved; restored here, dropout draws what it drew in that run
            set_rng_state(rng)
            rng = None
        with accelerator.accumulate(model):
            out = model(**batch)
            accelerator.backward(out["loss"])
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        losses = torch.stack([out["gen_loss"], out["route_loss"]]).float()
        top1 = out["top1"]
        if shared:  # the log shows the whole batch, not the main process's share
            losses, top1 = accelerator.reduce(losses, "mean"), accelerator.gather(top1)
        sums.update({"gen_loss": float(losses[0]), "route_loss": float(losses[1]), "n": 1})
        recent.append(top1.cpu())
        if not accelerator.sync_gradients:
            continue
        report.steps += 1
        bar.update(1)
        if on_step is not None:
            on_step(report.steps, accelerator.unwrap_model(model))
        if stop_when is not None:
            if stop_when():
                accelerator.set_trigger()
            if accelerator.check_trigger():  # every process leaves the loop together
                report.stopped_early = True
        if report.steps % LOG_EVERY == 0 or report.steps == steps:
            counts = torch.bincount(torch.cat(list(recent)), minlength=num_passages)
            entry = {"step": report.steps, "gen_loss": sums["gen_loss"] / sums["n"], "route_loss": sums["route_loss"] / sums["n"],
                     "usage_entropy": usage_entropy(counts)}
            report.history.append(entry)
            sums.clear()
            bar.set_postfix(gen=f"{entry['gen_loss']:.3f}", route=f"{entry['route_loss']:.3f}", H=f"{entry['usage_entropy']:.2f}")
        if report.stopped_early:
            break
        if stop_after is not None and report.steps >= stop_after:
            report.interrupted = True
            break
        if report.steps % params.checkpoint_every == 0 and report.steps < steps:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                save_state(state_dir, accelerator.unwrap_model(model), optimizer, scheduler, params, report.steps, report.history)
    bar.close()
    report.seconds = time.perf_counter() - start
    model.eval()
    accelerator.wait_for_everyone()
    return report
