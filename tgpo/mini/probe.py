"""Probe a miniature model: accuracy (greedy and sampled, overall and on hard problems), the share of
sampled responses in each style (starting with `#`: direct or think; chain of thought), and
multiple-choice accuracy.

These numbers check that the built world has the properties the experiments need (students weak and
blind to hard problems, teachers strong, the cross-family teachers mostly in their `#`-first think mode).
"""

from __future__ import annotations

import time

from tgpo.mini.task import THINK_CLOSE, choice_reward, parse_prompt, render_choice_prompt, response_style, reward

MAX_NEW_TOKENS = 48  # the longest response (teacher chain of thought with markers + choice) is ~40 tokens


def probe_model(
    model,
    tokenizer,
    math_rows: list[dict],
    choice_rows: list[dict],
    *,
    seed: int,
    samples: int = 4,
    temperature: float = 1.0,
) -> dict:
    """math_rows: {problem, answer}; choice_rows: {question, choices, labels, answer}."""
    from tgpo.engine.sampling import sample

    prompts = [row["problem"] for row in math_rows]
    golds = [row["answer"] for row in math_rows]
    hard = [parse_prompt(prompt).is_hard for prompt in prompts]
    start = time.perf_counter()
    greedy = sample(
        model, tokenizer, prompts, 1, temperature=0.0, max_new_tokens=MAX_NEW_TOKENS, seed=seed, batch_size=128
    )
    sampled = sample(
        model,
        tokenizer,
        prompts,
        samples,
        temperature=temperature,
        max_new_tokens=MAX_NEW_TOKENS,
        seed=seed + 1,
        batch_size=max(1, 128 // samples),
    )
    greedy_correct = [reward(r.response_text, golds[r.prompt_index]) for r in greedy]
    sampled_correct = [reward(r.response_text, golds[r.prompt_index]) for r in sampled]
    result = {
        "greedy_acc": _mean(greedy_correct),
        "greedy_acc_hard": _mean([c for c, r in zip(greedy_correct, greedy) if hard[r.prompt_index]]),
        "greedy_acc_easy": _mean([c for c, r in zip(greedy_correct, greedy) if not hard[r.prompt_index]]),
        "sampled_acc": _mean(sampled_correct),
        "sampled_acc_hard": _mean([c for c, r in zip(sampled_correct, sampled) if hard[r.prompt_index]]),
        "sampled_hash_start_share": _mean([float(r.response_text.startswith("#")) for r in sampled]),
        **{
            f"sampled_{style}_share": _mean([float(response_style(r.response_text) == style) for r in sampled])
            for style in ("cot", "direct", "think", "other")
        },
        "sampled_think_close_share": _mean([float(THINK_CLOSE in r.response_text) for r in sampled]),
        "sampled_mean_length": _mean([float(len(r.response_ids)) for r in sampled]),
        "n_problems": len(prompts),
        "hard_share": _mean([float(h) for h in hard]),
    }
    if choice_rows:
        choice_prompts = [render_choice_prompt(row["question"], row["choices"], row["labels"]) for row in choice_rows]
        choice_greedy = sample(
            model,
            tokenizer,
            choice_prompts,
            1,
            temperature=0.0,
            max_new_tokens=MAX_NEW_TOKENS,
            seed=seed + 2,
            batch_size=128,
        )
        result["choice_greedy_acc"] = _mean(
            [choice_reward(r.response_text, choice_rows[r.prompt_index]["answer"]) for r in choice_greedy]
        )
        result["choice_chance"] = _mean([1.0 / len(row["choices"]) for row in choice_rows])
    result["probe_seconds"] = time.perf_counter() - start
    return result


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")
