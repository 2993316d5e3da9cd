"""The training reward on verl 0.9.1: our verifier through verl's custom_reward_function (tgpo/verl/reward.py).

verl's own code loads it from the translated overrides (Hydra compose of ppo_trainer.yaml,
`load_reward_manager`) and its NaiveRewardManager scores real benchmark items, in its executor threads,
as evaluation's grader does.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("verl")

import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from verl_fixtures import byte_level_tokenizer  # noqa: E402

from eval.grading import GradeRequest, grade  # noqa: E402
from tgpo.config import load_config  # noqa: E402
from tgpo.verl import reward  # noqa: E402
from tgpo.verl.translate import experiment_overrides  # noqa: E402

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "tests" / "data" / "benchmarks" / "math"
PAPER_7B = ROOT / "config" / "paper-7b.yaml"
RL_EXPERIMENT = "grpo_pp"


def benchmark_items(name: str, ids: list[str]) -> list[dict]:
    rows = [json.loads(line) for line in (BENCHMARKS / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    by_id = {row["id"]: row for row in rows}
    return [by_id[item_id] for item_id in ids]


# (benchmark, ids): a tuple with \left/\right, an expression, an AMC number stored as "142.0"-style, AIME
ITEMS = (
    benchmark_items("math500", ["math500-0", "math500-1"])
    + benchmark_items("amc", ["amc-0"])
    + benchmark_items("aime24", ["aime24-0"])
)


def response(answer: str) -> str:
    """A student response in the paper's format: reasoning, `</think>`, then the boxed answer."""
    return f"Let me work through it step by step.\n</think>\nThe final answer is $\\boxed{{{answer}}}$."


def wrong_answer(item: dict) -> str:
    """Another item's gold answer (graded wrong for this item by every rule)."""
    return next(other["answer"] for other in ITEMS if other["answer"] != item["answer"])


def verl_config(overrides: list[str]):
    import verl

    with initialize_config_dir(config_dir=str(Path(verl.__file__).parent / "trainer" / "config"), version_base=None):
        return compose(config_name="ppo_trainer", overrides=overrides)


def in_a_thread(function, *args):
    out = []
    worker = threading.Thread(target=lambda: out.append(function(*args)))
    worker.start()
    worker.join()
    return out[0]


def reward_batch(tokenizer, responses: list[str], golds: list[str]):
    """A DataProto as verl's agent loop hands it to the reward manager: right-padded responses, attention
    mask over prompt + response, data_source / reward_model / extra_info as prepare-data writes them."""
    import numpy as np
    from verl import DataProto

    encoded = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in responses]
    width = max(len(ids) for ids in encoded)
    prompt = torch.full((len(encoded), 3), 7, dtype=torch.long)
    responses_tensor = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    response_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        responses_tensor[row, : len(ids)] = torch.tensor(ids)
        response_mask[row, : len(ids)] = 1
    return DataProto.from_dict(
        tensors={
            "prompts": prompt,
            "responses": responses_tensor,
            "attention_mask": torch.cat([torch.ones_like(prompt), response_mask], dim=1),
        },
        non_tensors={
            "data_source": np.array(["openr1_math"] * len(golds), dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": g} for g in golds], dtype=object),
            "extra_info": np.array([{"index": i} for i in range(len(golds))], dtype=object),
        },
    )


def test_translation_wires_our_verifier_as_verls_reward():
    overrides = dict(item.split("=", 1) for item in experiment_overrides(load_config(PAPER_7B), RL_EXPERIMENT, 0))
    path = Path(overrides["reward.custom_reward_function.path"])
    assert path.is_absolute() and path.samefile(ROOT / "tgpo" / "verl" / "reward.py")
    assert overrides["reward.custom_reward_function.name"] == "compute_score"
    assert overrides["+reward.custom_reward_function.reward_kwargs.verifier"] == "math_verify"


def test_unknown_verifier_fails_at_translation():
    config = load_config(PAPER_7B)
    config["training"]["verifier"] = "no_such_verifier"
    with pytest.raises(KeyError, match="no_such_verifier"):
        experiment_overrides(config, RL_EXPERIMENT, 0)


def test_verls_reward_manager_scores_real_items_like_evaluation():
    """verl loads the function from the overrides and its NaiveRewardManager (threads) grades 1 / 0; the
    grades equal eval.grading's on the same responses (without the wiring verl's default_compute_score
    raises NotImplementedError for data_source openr1_math)."""
    from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager

    cfg = verl_config(experiment_overrides(load_config(PAPER_7B), RL_EXPERIMENT, 0))
    assert get_custom_reward_fn(cfg) is not None
    tokenizer = byte_level_tokenizer()
    manager = load_reward_manager(cfg, tokenizer)
    texts = [response(item["answer"]) for item in ITEMS] + [response(wrong_answer(item)) for item in ITEMS]
    golds = [item["answer"] for item in ITEMS] * 2
    batch = reward_batch(tokenizer, texts, golds)
    scores = [
        manager.loop.run_until_complete(manager.run_single(batch[i : i + 1]))["reward_score"] for i in range(len(batch))
    ]
    assert scores == [1.0] * len(ITEMS) + [0.0] * len(ITEMS)
    for text, gold, score in zip(texts, golds, scores):
        for combine in ("math_verify", "any"):  # the training rule, and evaluation's reported rule
            assert grade(GradeRequest(response=text, gold=gold, kind="math", combine=combine)).correct == bool(score)


def test_documented_difference_from_evaluation_boxed_string_match():
    """Evaluation (`combine="any"`) also accepts an exact normalised match of the boxed answer that
    Math-Verify rejects; the training reward, like the authors' (Math-Verify alone), does not. Of MATH-500
    and Minerva answered with their own boxed gold, only this item differs (its gold holds a stray `$ $`)."""
    (item,) = benchmark_items("minerva", ["minerva-72"])
    text, gold = response(item["answer"]), item["answer"]
    assert grade(GradeRequest(response=text, gold=gold, kind="math", combine="any")).correct
    assert not grade(GradeRequest(response=text, gold=gold, kind="math", combine="math_verify")).correct
    assert reward.compute_score("openr1_math", text, gold) == 0.0


def test_same_rule_as_the_local_engines_verifier():
    from tgpo.verifiers import get_verifier

    math_verify = get_verifier("math_verify")
    for item in ITEMS:
        for text in (response(item["answer"]), response(wrong_answer(item))):
            assert reward.compute_score("openr1_math", text, item["answer"]) == math_verify(text, item["answer"])
    mini = get_verifier("mini_arith")
    for text in ("7+5+0=12;4+8+1=13;3+2+1=06;#632.", "#631.", "#632", "#632.\n"):
        assert reward.compute_score("mini", text, "632", verifier="mini_arith") == mini(text, "632")


def test_the_local_verifier_scores_zero_in_verls_executor_threads():
    """Why the reward grades in a worker process: Math-Verify's SIGALRM timeouts raise outside the main
    thread, and verl's reward manager calls the function from executor threads."""
    from tgpo.verifiers import math_verify_reward

    text, gold = response("142"), "142"
    assert math_verify_reward(text, gold) == 1.0
    assert in_a_thread(math_verify_reward, text, gold) == 0.0
    assert in_a_thread(reward.compute_score, "openr1_math", text, gold) == 1.0


def test_a_grader_never_hangs():
    """A response still being graded after timeout_s scores 0 and returns at once (the worker is killed)."""
    nested = "\\frac{1}{" * 40 + "x" + "}" * 40
    text = response(f"({nested})^{{10^{{10}}}}")
    started = time.perf_counter()
    assert reward.compute_score("openr1_math", text, "1", timeout_s=0.001) == 0.0
    assert time.perf_counter() - started < 30
