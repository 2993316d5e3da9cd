"""The paper's teacher (issue 18, item 9): Qwen3-30B-A3B-Thinking-2507 in both paper configs, with its source."""

from pathlib import Path

import pytest

from tgpo.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = ["config/paper-7b.yaml", "config/paper-1.5b.yaml"]
THINKING_TEACHER = "Qwen/Qwen3-30B-A3B-Thinking-2507"


@pytest.mark.parametrize("path", PAPER_CONFIGS)
def test_teacher_is_the_thinking_moe_model(path):
    config = load_config(ROOT / path)
    teachers = {spec["teacher"] for spec in config["experiments"].values() if spec.get("teacher")}
    assert "qwen3_30b_a3b" in teachers
    assert config["models"]["qwen3_30b_a3b"]["hub"] == THINKING_TEACHER
    assert config["models"][config["data"]["traces"]["teacher"]]["hub"] == THINKING_TEACHER


@pytest.mark.parametrize("path", PAPER_CONFIGS)
def test_teacher_choice_cites_its_sources(path):
    text = (ROOT / path).read_text()
    assert "footnote 4" in text and "helldog-star/TGPO config/env.sh" in text
