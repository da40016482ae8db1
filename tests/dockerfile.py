"""operator/Dockerfile read as stages of instructions, for the tests that check its rules
(tests/unit/test_supply_chain.py) and run its build stage (tests/security/test_image_recipe.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "operator" / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    """One instruction, its keyword upper-case and its arguments on one line."""

    keyword: str
    arguments: str


def read_stages(path: Path = DOCKERFILE) -> list[list[Instruction]]:
    """The instructions of each stage; stage 0 holds what precedes the first FROM (global ARGs)."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", path.read_text())  # join continuation lines
    stages: list[list[Instruction]] = [[]]
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, arguments = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword.upper(), " ".join(arguments.split())))
    return stages


def runs(stage: list[Instruction]) -> list[str]:
    """The shell commands of a stage's RUN instructions."""
    return [i.arguments for i in stage if i.keyword == "RUN"]
