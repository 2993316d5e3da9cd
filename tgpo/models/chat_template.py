"""The prepared checkpoints' chat template and stop tokens (tgpo.models.prepare, changes 3 and 4): the
generation prompt opens the thought section (`<think>\\n`), and generation stops at the template's turn end."""

from __future__ import annotations

import re

THINK_OPEN = "<think>"
THINK_START = THINK_OPEN + "\n"
_GENERATION_BLOCK = re.compile(
    r"\{%-?\s*if\s+add_generation_prompt\s*-?%\}(?P<body>.*?)\{%-?\s*endif\s*-?%\}", re.DOTALL
)


def render_generation_prompt(tokenizer, template: str | None = None) -> str:
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=True)


def think_chat_template(tokenizer) -> str:
    """The tokenizer's chat template with `<think>\\n` appended to the generation prompt (LUFFY's 16k-think).

    Inserted at the end of the last `{% if add_generation_prompt %}` block; checked by rendering. A
    template that already ends its generation prompt with `<think>\\n` is returned unchanged.
    """
    template = getattr(tokenizer, "chat_template", None)
    if not template or not isinstance(template, str):
        raise ValueError("tokenizer has no (single) chat template to extend with <think>")
    if render_generation_prompt(tokenizer, template).endswith(THINK_START):
        return template
    blocks = list(_GENERATION_BLOCK.finditer(template))
    if not blocks:
        raise ValueError("chat template has no `{% if add_generation_prompt %}` block to append <think> to")
    end = blocks[-1].end("body")
    new_template = template[:end] + "{{- '<think>\\n' }}" + template[end:]
    rendered = render_generation_prompt(tokenizer, new_template)
    if not rendered.endswith(THINK_START):
        raise ValueError(f"chat template edit failed: generation prompt renders as {rendered[-40:]!r}")
    return new_template


_TURN_MARK = "\u00a7ANSWER\u00a7"  # assistant content to find in a rendered chat


def chat_turn_end_id(tokenizer) -> int | None:
    """Id of the added token that closes an assistant turn in the tokenizer's chat template (Qwen's
    `<|im_end|>`, R1-Distill's EOS), None when the template has none or closes a turn with plain text."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": _TURN_MARK}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    if _TURN_MARK not in rendered:
        return None
    tail = rendered[rendered.rindex(_TURN_MARK) + len(_TURN_MARK) :]
    added = {token.content: index for index, token in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items()}
    for content in sorted(added, key=len, reverse=True):
        if tail.startswith(content):
            return added[content]
    return None


def generation_eos_ids(eos_token_id, tokenizer) -> list[int]:
    """generation_config's eos_token_id (int, list or None) as a list with the tokenizer's EOS and the chat
    template's turn end added: Qwen2.5-Math's generation_config.json lists <|endoftext|> (151643) only
    (https://huggingface.co/Qwen/Qwen2.5-Math-7B/blob/main/generation_config.json) while its chat turns end
    with <|im_end|> (151645). vLLM stops at the tokenizer's EOS and at generation_config.json's eos ids
    (vllm 0.29 SamplingParams.update_from_generation_config), which is what verl's rollout server and our
    evaluation use, so a student prompted through the chat template would otherwise write past its turn."""
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    for extra in (tokenizer.eos_token_id, chat_turn_end_id(tokenizer)):
        if extra is not None and extra not in ids:
            ids.append(extra)
    return ids
