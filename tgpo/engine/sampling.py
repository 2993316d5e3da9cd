"""Rollout sampling: G responses per prompt from the current policy, y_i ~ pi_theta(. | x) (Eq. 4).

One batched, KV-cached `generate` pass per chunk of prompts, left padding, pure ancestral sampling at the
given temperature (top-p optional; no top-k, no repetition penalty: the checkpoint's generation_config is
ignored on purpose, as verl/vLLM rollouts do). A response ends at the first EOS (kept in `response_ids`,
`finish_reason="stop"`) or after `max_new_tokens` (`finish_reason="length"`). Sampling draws from a
private RNG seeded with `seed`, so the same call gives the same rollouts on CPU and the caller's global
RNG state is left untouched. Temperature 0 means greedy decoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Rollout:
    """One sampled response to one prompt."""

    prompt_index: int  # index into the `prompts` list given to `sample`
    sample_index: int  # 0 .. n-1 within the prompt's group
    prompt_ids: list[int]  # prompt tokens (no padding)
    response_ids: list[int]  # generated tokens, the final EOS included when finish_reason == "stop"
    response_text: str  # decoded response, special tokens skipped
    finish_reason: str  # "stop" (EOS) | "length"


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every token id that ends a response: the tokenizer's EOS plus the model's generation_config EOS."""
    ids: list[int] = []
    candidates = [tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)]
    for candidate in candidates:
        if candidate is None:
            continue
        for token_id in candidate if isinstance(candidate, (list, tuple)) else [candidate]:
            if int(token_id) not in ids:
                ids.append(int(token_id))
    if not ids:
        raise ValueError(
            f"tokenizer {type(tokenizer).__name__} and model {type(model).__name__} define no eos_token_id; "
            "sampling needs one to end responses"
        )
    return ids


def pad_token_id(tokenizer, eos_ids: list[int]) -> int:
    return int(tokenizer.pad_token_id) if tokenizer.pad_token_id is not None else eos_ids[0]


def cut_response(generated: list[int], eos_ids: list[int]) -> tuple[list[int], str]:
    """Cut a generated row after its first EOS: (response_ids, finish_reason)."""
    eos_set = set(eos_ids)
    for position, token_id in enumerate(generated):
        if token_id in eos_set:
            return generated[: position + 1], "stop"
    return generated, "length"


def encode_prompts(tokenizer, prompts: list[str]) -> list[list[int]]:
    """Token ids of each prompt, without special tokens added (prompts arrive already templated)."""
    return [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad to a batch: (input_ids [B, L], attention_mask [B, L])."""
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            input_ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
            attention_mask[row, width - len(sequence) :] = 1
    return input_ids, attention_mask


def _generation_config(temperature: float, top_p: float, max_new_tokens: int, eos_ids: list[int], pad_id: int):
    from transformers import GenerationConfig

    greedy = temperature <= 0.0
    return GenerationConfig(
        do_sample=not greedy,
        temperature=None if greedy else float(temperature),
        top_p=None if greedy or top_p >= 1.0 else float(top_p),
        top_k=0,
        repetition_penalty=1.0,
        max_new_tokens=int(max_new_tokens),
        eos_token_id=eos_ids,
        pad_token_id=pad_id,
        use_cache=True,
    )


def sample(
    model,
    tokenizer,
    prompts: list[str],
    n: int,
    *,
    temperature: float,
    max_new_tokens: int,
    top_p: float = 1.0,
    seed: int,
    batch_size: int | None = None,
) -> list[Rollout]:
    """Sample `n` responses for each prompt; returns len(prompts) * n rollouts, prompt-major.

    `batch_size` is the number of prompts per `generate` call (all at once when None); each call
    generates batch_size * n sequences.
    """
    if n < 1:
        raise ValueError(f"sample: n (responses per prompt) must be >= 1, got {n}")
    if max_new_tokens < 1:
        raise ValueError(f"sample: max_new_tokens must be >= 1, got {max_new_tokens}")
    if not prompts:
        return []
    eos_ids = eos_token_ids(model, tokenizer)
    pad_id = pad_token_id(tokenizer, eos_ids)
    generation_config = _generation_config(temperature, top_p, max_new_tokens, eos_ids, pad_id)
    prompt_ids = encode_prompts(tokenizer, prompts)
    for index, ids in enumerate(prompt_ids):
        if not ids:
            raise ValueError(f"sample: prompt {index} ({prompts[index]!r}) encodes to no tokens")
    chunk = len(prompts) if batch_size is None else max(1, int(batch_size))
    device = next(model.parameters()).device

    was_training = model.training
    # generate() fills settings the call leaves at their defaults from model.generation_config (a
    # checkpoint's top_k, repetition_penalty, ...): swap in ours for the call so they cannot leak in.
    checkpoint_generation_config = model.generation_config
    model.generation_config = generation_config
    model.eval()
    rollouts: list[Rollout] = []
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            with torch.inference_mode():
                for start in range(0, len(prompts), chunk):
                    chunk_ids = prompt_ids[start : start + chunk]
                    repeated = [ids for ids in chunk_ids for _ in range(n)]
                    input_ids, attention_mask = left_pad(repeated, pad_id)
                    output = model.generate(
                        input_ids=input_ids.to(device),
                        attention_mask=attention_mask.to(device),
                        generation_config=generation_config,
                    )
                    generated = output[:, input_ids.shape[1] :].tolist()
                    for row, row_tokens in enumerate(generated):
                        response_ids, finish_reason = cut_response(row_tokens, eos_ids)
                        rollouts.append(
                            Rollout(
                                prompt_index=start + row // n,
                                sample_index=row % n,
                                prompt_ids=list(repeated[row]),
                                response_ids=response_ids,
                                response_text=tokenizer.decode(response_ids, skip_special_tokens=True),
                                finish_reason=finish_reason,
                            )
                        )
    finally:
        model.generation_config = checkpoint_generation_config
        model.train(was_training)
    return rollouts
