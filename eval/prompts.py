"""Prompt templates: the paper's system prompt (Appendix B.2) and the released checkpoints' own templates.

The paper evaluates every trained model with the system prompt of Appendix B.2 followed by

    User: {QUESTION}

    Assistant: <think>

so a response continues inside the thought section and its answer follows `</think>` (template "tgpo").
"tgpo_chat" puts the same system prompt and question through the tokenizer's chat template and appends
`<think>\n` (the TGPO authors' "aligned" checkpoints, helldog-star/TGPO data/download.sh). The released checkpoints the
paper evaluates as-is keep the templates their authors evaluated them with (ElliottYan/LUFFY
eval_scripts/generate_vllm.py): SimpleRL-Zero "qwen", PRIME-Zero "prime", Oat-Zero "qwen_math". "raw" passes the
question as is (the miniature world, whose multiple-choice prompts are `q|A:x|B:y|`).

"authors" is the TGPO authors' `--template own --remove_system False` (helldog-star/TGPO
eval_scripts/generate_vllm.py, build_prompt_from_message; flags in eval_scripts/my_eval_sh.sh): the model's
own chat template over [system = LUFFY's system prompt as stored in every row of ElliottYan/LUFFY
data/valid.*.parquet, user = the question], generation prompt added. The prepared checkpoints' chat
templates end the generation prompt with `<think>\n` (tgpo.models.prepare, as the authors' aligned models,
helldog-star/TGPO data/download.sh), so the response starts inside the thought section; `think_opened`
tells the grader whether a prompt did (the authors' `prompt.endswith("<think>\n")`).

Multiple-choice questions list their options as `A) text` lines after the question, as in LUFFY's
ARC-c / GPQA files ("authors" also ends the list with a newline, as ARC-c's rows do, and puts a
benchmark's instruction, GPQA's "ANSWER: $LETTER" line, before the question); "raw" uses the miniature's
`render_choice_prompt` instead. A problem read from a LUFFY file carries the user message verbatim
(options included) and is passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eval.benchmarks import Problem

# App. B.2 verbatim (the PDF's typographic quotes kept) and LUFFY's (its data files).
from tgpo.system_prompt import LUFFY_SYSTEM_PROMPT, SYSTEM_PROMPT  # defined once for both engines

THINK_START = "<think>\n"
QWEN_MATH_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
PRIME_ZERO_INSTRUCTION = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
PRIME_ZERO_SUFFIX = "\n\nPresent the answer in LaTex format: \\boxed{Your answer}"


def tgpo_template(question: str, tokenizer: Any = None) -> str:
    return f"{SYSTEM_PROMPT}\n\nUser: {question}\n\nAssistant: {THINK_START}"


def tgpo_chat_template(question: str, tokenizer: Any = None) -> str:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError("template 'tgpo_chat' needs a tokenizer with a chat template")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text if text.endswith(THINK_START) else text + THINK_START


def authors_template(question: str, tokenizer: Any = None) -> str:
    """The model's own chat template over [LUFFY's system prompt, question] (the authors' "own")."""
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ValueError("template 'authors' needs a tokenizer with a chat template (the authors' `--template own`)")
    messages = [{"role": "system", "content": LUFFY_SYSTEM_PROMPT}, {"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def think_opened(prompt: str) -> bool:
    """The prompt ends inside an opened thought section (the authors' check before splitting at </think>)."""
    return prompt.endswith(THINK_START)


def qwen_math_template(question: str, tokenizer: Any = None) -> str:
    """Qwen2.5-Math's chat format with its CoT system prompt (LUFFY "qwen", Oat "qwen_math": same text)."""
    return (
        f"<|im_start|>system\n{QWEN_MATH_SYSTEM}<|im_end|>\n"
        f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    )


def prime_zero_template(question: str, tokenizer: Any = None) -> str:
    return f"{PRIME_ZERO_INSTRUCTION} User: {question}{PRIME_ZERO_SUFFIX}. Assistant:"


def raw_template(question: str, tokenizer: Any = None) -> str:
    return question


TEMPLATES: dict[str, Callable[[str, Any], str]] = {
    "tgpo": tgpo_template,
    "tgpo_chat": tgpo_chat_template,
    "authors": authors_template,
    "qwen": qwen_math_template,  # SimpleRL-Zero in LUFFY's eval
    "qwen_math": qwen_math_template,  # Oat-Zero's own eval
    "prime": prime_zero_template,
    "raw": raw_template,
}

# Released checkpoints the paper evaluates without retraining -> the template they are evaluated with:
# helldog-star/TGPO eval_scripts/my_eval_sh.sh (and ElliottYan/LUFFY README "Evaluation") name
# "simple-rl-zero" -> qwen and "eurus-2-7b-prime-zero" -> prime; Oat-Zero falls to `own`, its tokenizer's
# chat template, assumed to be Qwen2.5-Math's (its base model's; not checked offline), whose default system
# prompt (no system message: LUFFY README's `--remove_system True`) is the qwen_math text.
RELEASED_CHECKPOINT_TEMPLATES: dict[str, str] = {
    "hkust-nlp/Qwen-2.5-Math-7B-SimpleRL-Zero": "qwen",
    "PRIME-RL/Eurus-2-7B-PRIME-Zero": "prime",
    "sail/Qwen2.5-Math-7B-Oat-Zero": "qwen_math",
}

DEFAULT_TEMPLATE = "tgpo"


def template_for_model(model: str, requested: str | None = None) -> str:
    """The template name to use: `requested` unless it is None or "auto", else the released checkpoint's
    template when `model` is one of their hub ids, else the paper's "tgpo" template."""
    if requested and requested != "auto":
        if requested not in TEMPLATES:
            raise KeyError(f"unknown template {requested!r}; known templates: {', '.join(sorted(TEMPLATES))}, auto")
        return requested
    return RELEASED_CHECKPOINT_TEMPLATES.get(str(model), DEFAULT_TEMPLATE)


def question_text(problem: Problem, template: str) -> str:
    """The question as the model reads it: maths (and LUFFY rows, options included) as is; multiple
    choice with its options listed."""
    if not problem.options:
        return problem.question
    if template == "raw":
        from tgpo.mini.task import render_choice_prompt

        return render_choice_prompt(problem.question, list(problem.options), list(problem.option_labels))
    lines = "\n".join(f"{label}) {text}" for label, text in zip(problem.option_labels, problem.options))
    if template == "authors":  # LUFFY's layout: instruction, blank line, question, options, final newline
        head = f"{problem.instruction}\n\n" if problem.instruction else ""
        return f"{head}{problem.question}\n\n{lines}\n"
    return f"{problem.question}\n\n{lines}"


def build_prompt(problem: Problem, template: str, tokenizer: Any = None) -> str:
    """The full prompt string for `problem` under `template` (a key of TEMPLATES)."""
    if template not in TEMPLATES:
        raise KeyError(f"unknown template {template!r}; known templates: {', '.join(sorted(TEMPLATES))}")
    return TEMPLATES[template](question_text(problem, template), tokenizer)
