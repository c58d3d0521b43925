"""`-P key=value` strings become typed settings, or one clear error."""

from dataclasses import dataclass

import pytest

from rag_bench.errors import RagBenchError
from rag_bench.params import parse_assignments, parse_params


@dataclass(frozen=True)
class Settings:
    name: str = "x"
    depth: int = 3
    rate: float = 0.5
    enabled: bool = False
    limit: int | None = None
    layers: tuple[str, ...] = ("q", "v")


def test_values_are_converted_to_the_declared_types():
    raw = parse_assignments(["depth=7", "rate=1e-3", "enabled=yes", "limit=none", "layers=q_proj, k_proj"])
    s = parse_params(Settings, raw, "provider demo")
    assert s == Settings(depth=7, rate=1e-3, enabled=True, limit=None, layers=("q_proj", "k_proj"))
    assert parse_params(Settings, {"limit": "12"}, "demo").limit == 12


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"depht": "2"}, "no setting 'depht'. Did you mean: depth?"),
        ({"depth": "two"}, "-P depth='two' is not a valid int"),
        ({"enabled": "maybe"}, "-P enabled='maybe' is not a valid bool"),
    ],
)
def test_bad_values_name_the_setting(raw, message):
    with pytest.raises(RagBenchError, match=message.replace("?", r"\?").replace("(", r"\(")):
        parse_params(Settings, raw, "provider demo")


@pytest.mark.parametrize("spelling", ["true", "1", "yes", "on", "TRUE", "Yes", "On"])
def test_every_documented_true_spelling(spelling):
    assert parse_params(Settings, {"enabled": spelling}, "demo").enabled is True


@pytest.mark.parametrize("spelling", ["false", "0", "no", "off", "False", "NO"])
def test_every_documented_false_spelling(spelling):
    assert parse_params(Settings, {"enabled": "true"}, "demo").enabled is True
    assert parse_params(Settings, {"enabled": spelling}, "demo").enabled is False


@pytest.mark.parametrize("spelling", ["none", "null", "", "None"])
def test_optional_settings_take_none(spelling):
    assert parse_params(Settings, {"limit": spelling}, "demo").limit is None


def test_assignment_without_equals_is_refused():
    with pytest.raises(RagBenchError, match="expected key=value"):
        parse_assignments(["depth"])
