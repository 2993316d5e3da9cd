"""Character-level HF tokenizers of the miniature world.

The student tokenizer is a `PreTrainedTokenizerFast` over single characters (a `tokenizers` WordLevel
model after a one-character split) with `<pad>` (id 0), `</s>` (EOS, id 1) and `<unk>` (id 2). There is
no BOS: prompts are fed as they are (the local sampler encodes prompts with add_special_tokens=False).

The cross-family teachers' tokenizer is the student's vocabulary plus TEACHER_EXTRA_TOKENS appended at
the end (ids >= the student's vocabulary size). The teachers close their think-style reasoning with
`</think>`, so some teacher argmax ids fall outside the student's vocabulary (where a student's prefix
follows the teacher's mode), as with Qwen3-30B-A3B's thinking tokens against Qwen2.5-Math's vocabulary;
the engine masks those ids (teacher_valid_mask). `<think>` exists in the vocabulary but is unused.

The verl world (`--size verl`, for the cluster engine on CPU) differs in three ways that verl 0.9.1 and
vLLM need, none of which changes what the models learn: "\n" is a token (verl's Qwen continuous-token
wiring looks it up), both tokenizers carry a chat template that renders the user turn as it is and an
assistant turn as its content + EOS (verl and vLLM render chat messages; the miniature's prompt is the
user turn, verl's SFT trains on the assistant turn), and the teacher tokenizer puts its
extra tokens FIRST, so every shared string has a different id in the two vocabularies: the teacher must
be aligned to the student's ids by token string (`prepare: {align_ids_to: ...}`), as R1-Distill-Qwen's
`<think>` (Qwen2.5's `<|box_start|>` id) must be at paper scale. The verl world's teacher also ends its
answers with its own EOS, `<|im_end|>`, which the student's vocabulary lacks (Qwen3-30B-A3B's chat EOS
against Qwen2.5-Math's `<|endoftext|>`): where a student response ends, the teacher's argmax is a token
the student cannot represent, so the masked fraction `tgpo/teacher_oov_frac` is measured for real.
"""

from __future__ import annotations

from pathlib import Path

from tgpo.mini.task import CHOICE_LABELS, THINK_CLOSE, THINK_OPEN

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
SPECIAL_TOKENS = [PAD, EOS, UNK]
CHARACTERS = list("0123456789+=;#.:|") + list(CHOICE_LABELS)
TEACHER_EXTRA_TOKENS = [THINK_OPEN, THINK_CLOSE]
VERL_TEACHER_EOS = "<|im_end|>"  # the verl world's teacher EOS (module docstring)
# transformers 5 loads the tokenizer of a Qwen2 checkpoint as Qwen2Tokenizer, whose byte-level
# pre-tokenizer turns "\n" into "Ċ" (GPT-2's printable stand-in for byte 0x0A) before the vocabulary is
# looked up; the verl world's tokenizers byte-map the same way, so "\n" is one token in both.
BYTE_LEVEL_NEWLINE = "\u010a"
# Renders a user turn as it is and an assistant turn as its content followed by the EOS token (system
# turns dropped; the miniature has no system prompt); the generation prompt adds nothing, since the
# miniature's prompt ends where the response begins. [user, assistant] renders prompt + response + EOS,
# the sequence the local engine trains SFT on. verl's SFT dataset renders each turn on its own and
# trains on the assistant turns' tokens only (verl-project/verl v0.9.1
# verl/utils/dataset/multiturn_sft_dataset.py): without the assistant turn it would train on nothing.
USER_TURN_CHAT_TEMPLATE = (
    "{%- for message in messages -%}{%- if message['role'] == 'user' -%}{{ message['content'] }}"
    "{%- elif message['role'] == 'assistant' -%}{{ message['content'] }}{{ eos_token }}"
    "{%- endif -%}{%- endfor -%}"
)


def build_tokenizer(extra_tokens: list[str] | None = None, *, for_verl: bool = False, eos: str = EOS):
    """The student tokenizer, or with `extra_tokens` appended (ids after every student id).

    for_verl: "\n" joins the characters, a chat template is set, and `extra_tokens` take the ids right
    after the special tokens instead (module docstring). `eos`: the EOS token (a special token of its
    own when it is not EOS)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    characters = CHARACTERS + [BYTE_LEVEL_NEWLINE] if for_verl else CHARACTERS
    leading = list(extra_tokens or []) if for_verl else []
    specials = SPECIAL_TOKENS + ([eos] if eos not in SPECIAL_TOKENS else [])
    vocab = {token: index for index, token in enumerate(specials + leading + characters)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    split = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    if for_verl:  # byte-level, as Qwen2Tokenizer (BYTE_LEVEL_NEWLINE); printable ASCII maps to itself
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
        backend.decoder = decoders.ByteLevel()
    else:
        backend.pre_tokenizer = split
        backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(token, special=True) for token in specials])
    if extra_tokens:  # matched whole; with for_verl they keep their leading vocabulary ids
        backend.add_tokens([AddedToken(token, special=False, normalized=False) for token in extra_tokens])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        eos_token=eos,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
        padding_side="left",
        model_max_length=512,
    )
    if for_verl:
        tokenizer.chat_template = USER_TURN_CHAT_TEMPLATE
    expected = len(vocab) + (0 if for_verl else len(extra_tokens or []))
    if len(tokenizer) != expected:
        raise RuntimeError(f"tokenizer has {len(tokenizer)} tokens, expected {expected}")
    return tokenizer


def build_student_tokenizer(*, for_verl: bool = False):
    return build_tokenizer(for_verl=for_verl)


def build_teacher_tokenizer(*, for_verl: bool = False):
    """Student vocabulary + TEACHER_EXTRA_TOKENS (the cross-family tokenizer)."""
    return build_tokenizer(TEACHER_EXTRA_TOKENS, for_verl=for_verl, eos=VERL_TEACHER_EOS if for_verl else EOS)


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text` (no special tokens added); raises on characters outside the vocabulary."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.unk_token_id in ids:
        raise ValueError(f"text {text!r} has characters outside the miniature vocabulary {''.join(CHARACTERS)!r}")
    return ids


def save_tokenizer(tokenizer, directory: str | Path) -> None:
    tokenizer.save_pretrained(str(directory))
