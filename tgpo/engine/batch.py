"""The rollout batch as tensors, and the forward pass that yields logits at response positions.

Layout (as verl's): each row is the left-padded prompt followed by the right-padded response,
`input_ids [N, P + T]`. The logits at position P - 1 + t predict response token t, so
`response_logits` returns `[N, T, V]` where row t predicts `response_ids[:, t]`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch


@dataclass
class RolloutBatch:
    input_ids: torch.Tensor  # [N, P + T] prompt (left-padded) + response (right-padded)
    attention_mask: torch.Tensor  # [N, P + T] 1 on real tokens
    position_ids: torch.Tensor  # [N, P + T] 0-based positions of real tokens (0 on left padding)
    response_ids: torch.Tensor  # [N, T]
    response_mask: torch.Tensor  # [N, T] float, 1 on response tokens
    prompt_width: int  # P

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def rows(self, index: slice | torch.Tensor) -> RolloutBatch:
        """The sub-batch of the given rows (a view for slices)."""
        return RolloutBatch(
            input_ids=self.input_ids[index],
            attention_mask=self.attention_mask[index],
            position_ids=self.position_ids[index],
            response_ids=self.response_ids[index],
            response_mask=self.response_mask[index],
            prompt_width=self.prompt_width,
        )


def build_batch(prompt_ids: list[list[int]], response_ids: list[list[int]], pad_id: int) -> RolloutBatch:
    """Stack (prompt, response) token lists into a RolloutBatch. Responses must be non-empty."""
    if len(prompt_ids) != len(response_ids):
        raise ValueError(f"build_batch: {len(prompt_ids)} prompts but {len(response_ids)} responses")
    prompt_width = max(len(ids) for ids in prompt_ids)
    response_width = max(1, max(len(ids) for ids in response_ids))
    rows = len(prompt_ids)
    input_ids = torch.full((rows, prompt_width + response_width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, (prompt, response) in enumerate(zip(prompt_ids, response_ids)):
        input_ids[row, prompt_width - len(prompt) : prompt_width] = torch.tensor(prompt, dtype=torch.long)
        attention_mask[row, prompt_width - len(prompt) : prompt_width] = 1
        if response:
            input_ids[row, prompt_width : prompt_width + len(response)] = torch.tensor(response, dtype=torch.long)
            attention_mask[row, prompt_width : prompt_width + len(response)] = 1
    position_ids = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)
    return RolloutBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        response_ids=input_ids[:, prompt_width:].clone(),
        response_mask=attention_mask[:, prompt_width:].to(torch.float32),
        prompt_width=prompt_width,
    )


def _accepts_logits_to_keep(model) -> bool:
    cached = getattr(model, "_tgpo_accepts_logits_to_keep", None)
    if cached is None:
        cached = "logits_to_keep" in inspect.signature(model.forward).parameters
        model._tgpo_accepts_logits_to_keep = cached
    return cached


def response_logits(model, batch: RolloutBatch, temperature: float = 1.0) -> torch.Tensor:
    """Logits [N, T, V] at response positions (row t predicts response token t), divided by temperature.

    The LM head runs on the last T + 1 positions only when the model supports `logits_to_keep`.
    """
    width = batch.response_ids.shape[1]
    kwargs = {"logits_to_keep": width + 1} if _accepts_logits_to_keep(model) else {}
    output = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=False,
        **kwargs,
    )
    offset = batch.prompt_width - 1 - (batch.input_ids.shape[1] - output.logits.shape[1])
    logits = output.logits[:, offset : offset + width, :]
    if temperature != 1.0:
        logits = logits / temperature
    return logits.float()
