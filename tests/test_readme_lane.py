"""CI's `readme` lane is the README, literally: its install lines and its test command, nothing else in between.

`.ci/run` holds the lines between its `# >>> README` and `# <<< README` markers; the README holds them in its first
code block (the install part, before the "# 2." step that runs the main job) and in the code block after "Test
command". These tests fail when the two drift apart, or when the lane stops being run by default.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What `.ci/run` may add after a README line: copying its output to the lane's log.
LOG_SUFFIX = re.compile(r"\s+2>&1 \| tee \S+$")


def code_lines(text: str) -> list[str]:
    """Shell lines without comments, blank lines or trailing comments."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def bash_blocks(markdown: str) -> list[tuple[int, str]]:
    """(offset, body) of every ```bash fenced block."""
    return [(m.start(), m.group(1)) for m in re.finditer(r"```bash\n(.*?)```", markdown, re.S)]


def readme_lines(markdown: str) -> list[str]:
    """The README's install lines (its first code block, up to the "# 2." step) and its test command."""
    blocks = bash_blocks(markdown)
    first = blocks[0][1]
    install = first.split("\n# 2.")[0]
    test_at = markdown.index("Test command")
    test = next(body for offset, body in blocks if offset > test_at)
    return code_lines(install) + code_lines(test)


def lane_lines(script: str) -> list[str]:
    """The lines between the README markers of `.ci/run`, as the README would have them."""
    inside = script.split("# >>> README", 1)[1].split("# <<< README", 1)[0]
    return [LOG_SUFFIX.sub("", line) for line in code_lines(inside.split("\n", 1)[1])]


def test_the_readme_lane_runs_exactly_the_readme_install_and_test_command():
    readme = readme_lines((REPO / "README.md").read_text(encoding="utf-8"))
    assert readme[0].startswith("python3 -m venv ") and "pytest" in readme[-1]
    assert "rag-bench judges install-ragchecker" in readme
    assert lane_lines((REPO / ".ci" / "run").read_text(encoding="utf-8")) == readme


def test_the_readme_lane_is_a_default_lane():
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    default = re.search(r"lanes=\(([^)]*)\)", script.split("lanes=(\"$@\")", 1)[1]).group(1).split()
    assert "readme" in default


def test_the_comparison_sees_a_drift():
    """A changed install line in either file makes the two differ (the check above can fail)."""
    markdown = (REPO / "README.md").read_text(encoding="utf-8")
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    drifted = script.replace("-c constraints-current.txt", "-c constraints-lock.txt", 1)
    assert lane_lines(drifted) != readme_lines(markdown)
    assert lane_lines(script) != readme_lines(markdown.replace("rag-bench judges install-ragchecker", "true", 1))
