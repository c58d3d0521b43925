"""Keep secrets off published results and pages.

Readers must never put secrets in their settings, but a leaderboard is public:
values under secret-looking keys, ``-R key=value`` command arguments with such
keys, and any literal value of a secret-looking environment variable are
replaced before anything is written.
"""

from __future__ import annotations

import os
import re
from typing import Any

REDACTED = "[redacted]"
#: Keys (and environment variables) whose values are secrets. ``token`` counts only where no letter follows it
#: (``hf_token``, ``HF_TOKEN``, ``accessToken``, ``--token``): ``max_new_tokens``, ``prompt_tokens`` and
#: ``tokenizer`` are settings and usage counts a reader of the result needs.
SECRET_KEY = re.compile(r"(api[_-]?key|token(?![a-z])|secret|passw(or)?d|authori[sz]ation|credential|cookie)", re.I)
# Local paths say nothing about a result and expose the machine's layout.
DROPPED_KEYS = {"workdir"}


def _secret_env_values() -> list[str]:
    return [value for name, value in os.environ.items() if SECRET_KEY.search(name) and len(value) >= 8]


def _scrub_text(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact(value: Any, _secrets: list[str] | None = None) -> Any:
    """A copy of a JSON-like value with secrets replaced and local paths dropped."""
    secrets = _secret_env_values() if _secrets is None else _secrets
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in DROPPED_KEYS:
                continue
            out[key] = REDACTED if SECRET_KEY.search(str(key)) and item not in (None, "") else redact(item, secrets)
        return out
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    if isinstance(value, str):
        return _scrub_text(value, secrets)
    return value


def redact_command(argv: list[str]) -> list[str]:
    """The command with values of secret-looking ``KEY=VALUE`` arguments (and options) hidden."""
    secrets = _secret_env_values()
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = _scrub_text(str(arg), secrets)
        key, sep, _ = arg.partition("=")
        if hide_next:
            out.append(REDACTED)
            hide_next = False
        elif sep and SECRET_KEY.search(key):
            out.append(f"{key}={REDACTED}")
        elif arg.startswith("--") and SECRET_KEY.search(arg):
            out.append(arg)
            hide_next = True
        else:
            out.append(arg)
    return out
