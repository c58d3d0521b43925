"""The training-step benchmark runs the provider's loop per variant and tells whether a variant keeps the loss curve."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "llm_memory_train_step.py"


def load_script():
    spec = importlib.util.spec_from_file_location("llm_memory_train_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gradient_checkpointing_keeps_the_loss_curve_and_a_changed_setting_does_not(nq_5k, tmp_path):
    out = tmp_path / "steps.json"
    tiny = ["-P", "base=tiny", "-P", "tokenizer=minilm", "-P", "batch_size=4", "-P", "warmup_steps=1",
            "-P", "tiny_hidden=64", "-P", "tiny_layers=2", "-P", "tiny_intermediate=128", "-P", "threads=1"]
    assert load_script().main(["--passages", "16", "--steps", "3", "--rounds", "1", *tiny,
                               "--variant", "gradient_checkpointing=false", "--variant", "gradient_checkpointing=true",
                               "--variant", "lr_z=0.01", "--out", str(out)]) == 0
    rows = {row["variant"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["gradient_checkpointing=true"]["same_losses_and_weights_as_first"]
    assert not rows["lr_z=0.01"]["same_losses_and_weights_as_first"]
    assert all(len(row["seconds"]) == 2 and row["loss_log"] for row in rows.values())
