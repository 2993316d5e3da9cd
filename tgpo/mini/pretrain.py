"""Pretraining of the tiny models: plain next-token cross-entropy on a corpus (the base models' analogue).

    L(theta) = - mean over response tokens t of log pi_theta(y_t | x, y_<t)

The prompt tokens are context only (they are uniformly random digits, nothing to learn); the response
and its EOS are the targets. AdamW with linear warm-up then cosine decay to 10 % of the peak rate.
Batches are drawn with replacement, then sorted by length in pools of POOL_BATCHES batches, so that
a batch of short direct answers is not padded to the length of a chain of thought.
"""

from __future__ import annotations

import math
import time

import torch

POOL_BATCHES = 8
IGNORE_INDEX = -100


def tokenize_corpus(tokenizer, prompts: list[str], responses: list[str]) -> tuple[list[list[int]], list[int]]:
    """(token ids of prompt + response + EOS, number of prompt tokens) per row."""
    prompt_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    sequences, prompt_lengths = [], []
    for row, (prompt, response) in enumerate(zip(prompt_ids, response_ids)):
        if unk in prompt or unk in response:
            raise ValueError(f"corpus row {row} ({prompts[row]!r} -> {responses[row]!r}) has out-of-vocabulary text")
        sequences.append(prompt + response + [tokenizer.eos_token_id])
        prompt_lengths.append(len(prompt))
    return sequences, prompt_lengths


def collate(sequences: list[list[int]], prompt_lengths: list[int], pad_id: int):
    """Right-padded (input_ids [B, L], attention_mask [B, L], labels [B, L]; prompt and pad = -100)."""
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    labels = torch.full((len(sequences), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (sequence, n_prompt) in enumerate(zip(sequences, prompt_lengths)):
        tokens = torch.tensor(sequence, dtype=torch.long)
        input_ids[row, : len(sequence)] = tokens
        attention_mask[row, : len(sequence)] = 1
        labels[row, n_prompt : len(sequence)] = tokens[n_prompt:]
    return input_ids, attention_mask, labels


def batch_schedule(lengths: list[int], steps: int, batch_size: int, generator: torch.Generator):
    """Yield `steps` index batches: random rows, length-sorted within pools of POOL_BATCHES batches."""
    lengths_tensor = torch.tensor(lengths)
    produced = 0
    while produced < steps:
        pool = torch.randint(len(lengths), (POOL_BATCHES * batch_size,), generator=generator)
        pool = pool[torch.argsort(lengths_tensor[pool], stable=True)]
        chunks = list(pool.split(batch_size))
        for order in torch.randperm(len(chunks), generator=generator).tolist():
            if produced == steps:
                return
            produced += 1
            yield chunks[order].tolist()


def learning_rate(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up to `peak` over `warmup` steps, cosine decay to 0.1 * peak at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def pretrain(
    model,
    tokenizer,
    prompts: list[str],
    responses: list[str],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: int,
    seed: int,
    weight_decay: float = 0.01,
    log_every: int = 50,
) -> dict:
    """Train `model` in place; returns {"loss_first", "loss_last" (mean of the last 20 steps), "seconds", "cpu_seconds"}."""
    sequences, prompt_lengths = tokenize_corpus(tokenizer, prompts, responses)
    return pretrain_sequences(
        model,
        sequences,
        prompt_lengths,
        tokenizer.pad_token_id,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        warmup=warmup,
        seed=seed,
        weight_decay=weight_decay,
        log_every=log_every,
    )


def pretrain_sequences(
    model,
    sequences: list[list[int]],
    prompt_lengths: list[int],
    pad_id: int,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    warmup: int,
    seed: int,
    weight_decay: float = 0.01,
    log_every: int = 50,
) -> dict:
    """`pretrain` on token ids: each sequence is prompt + response (+ end token); the first
    `prompt_lengths[i]` tokens are context only."""
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    model.train()
    losses: list[float] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    progress = tqdm(
        batch_schedule([len(s) for s in sequences], steps, batch_size, generator),
        total=steps,
        desc="pretrain",
        mininterval=5.0,
    )
    for step, rows in enumerate(progress):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, lr, warmup, steps)
        input_ids, attention_mask, labels = collate(
            [sequences[i] for i in rows], [prompt_lengths[i] for i in rows], pad_id
        )
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.detach().item())
        if step % log_every == 0 or step == steps - 1:
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
    model.eval()
    tail = losses[-20:]
    return {
        "loss_first": losses[0],
        "loss_last": sum(tail) / len(tail),
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
    }
