"""Providers and readers hold their settings one way (`rag_bench.params.Configurable`), and the settings a run
records, whose hash names published rows, come out as the committed results recorded them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.params import Configurable, NoParams, parse_assignments
from rag_bench.preparation import build_provider, build_reader
from rag_bench.provider import EvidenceProvider
from rag_bench.reader import Reader
from rag_bench.registry import registry
from rag_bench.runner import split_reader_spec

RESULTS = Path(__file__).resolve().parents[1] / "leaderboard" / "results"


@pytest.mark.parametrize("cls", [EvidenceProvider, Reader])
def test_providers_and_readers_share_one_settings_mechanism(cls):
    assert issubclass(cls, Configurable)
    for name in ("Params", "runtime_settings", "__init__", "settings", "fixed_settings", "from_strings"):
        assert name not in vars(cls), f"{cls.__name__} repeats {name}; it belongs to Configurable"
    assert cls.Params is NoParams and cls.runtime_settings == ()


@dataclass(frozen=True)
class Knobs:
    depth: int = 3
    threads: int = 1
    names: tuple[str, ...] = ()


class Knobbed(Configurable):
    Params = Knobs
    runtime_settings = ("threads",)


def test_configurable_parses_records_and_splits_off_the_runtime_settings():
    plain = Knobbed()
    assert plain.params == Knobs() and plain.settings() == {"depth": 3, "threads": 1, "names": []}
    built = Knobbed.from_strings({"depth": "5", "threads": "4", "names": "a,b"}, "thing knobbed")
    assert built.settings() == {"depth": 5, "threads": 4, "names": ["a", "b"]}
    assert built.fixed_settings() == {"depth": 5, "names": ["a", "b"]}
    with pytest.raises(RagBenchError, match=r"thing knobbed has no setting 'deepth'. Did you mean: depth\?"):
        Knobbed.from_strings({"deepth": "5"}, "thing knobbed")


def test_every_provider_and_reader_splits_its_settings_by_its_runtime_settings():
    for name in registry().providers.names():
        provider = build_provider(name, {})
        runtime = set(provider.runtime_settings)
        assert provider.state_settings() == {k: v for k, v in provider.settings().items() if k not in runtime}, name
    for name in registry().readers.names():
        reader = build_reader(name, {"model": "m"} if name == "hf" else {})
        runtime = set(reader.runtime_settings)
        assert reader.answer_settings() == {k: v for k, v in reader.settings().items() if k not in runtime}, name


def _published() -> list[Path]:
    return sorted(path for path in RESULTS.rglob("*.json") if "manifest" in json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", _published(), ids=lambda path: path.name)
def test_the_settings_of_a_published_row_come_out_as_it_recorded_them(path):
    """Built from the row's own command, provider and reader give the settings (and runtime settings) in its
    manifest: its config hash, made of `settings()` and `answer_settings()`, is reproduced."""
    manifest = json.loads(path.read_text(encoding="utf-8"))["manifest"]
    command = manifest["command"]

    def values(flag: str) -> dict[str, str]:
        return parse_assignments(command[i + 1] for i, arg in enumerate(command) if arg == flag)

    provider = build_provider(manifest["provider"]["name"], values("-P"))
    spec = command[command.index("--reader") + 1] if "--reader" in command else manifest["reader"]["name"]
    reader_name, reader_params = split_reader_spec(spec)
    reader = build_reader(reader_name, {**reader_params, **values("-R")})
    for built, recorded in ((provider, manifest["provider"]), (reader, manifest["reader"])):
        assert built.settings() == recorded["settings"]
        # (rows published before the runtime settings were recorded lack them)
        assert list(built.runtime_settings) == recorded.get("runtime_settings", list(built.runtime_settings))
