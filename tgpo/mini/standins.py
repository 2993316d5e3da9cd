"""Stand-ins for the paper's checkpoints: a miniature model re-laid into a real model's token layout.

    python -m tgpo build-model --world W --kind student_large --layout qwen2.5-math-7b --out DIR --size verl

The miniature's models (tgpo.mini.models) speak a ~25-token character vocabulary. The paper's models share
Qwen2's byte-level BPE vocabulary (ids 0..151642) and differ in the special tokens added after it, in the
rows of their embedding matrices and in their EOS / PAD / BOS and chat templates. `prepare-model`'s
vocabulary alignment, resizing and stop-token paths only run as at paper scale on that layout, so a
stand-in keeps it (`LAYOUTS`, each citing its public files):

* ids 0..255: the 256 byte-level characters in GPT-2's `bytes_to_unicode` order, which are Qwen2's own
  first 256 ids ("!" = 0, "0" = 15, "\\n" = "Ċ" = 198, " " = "Ġ" = 220); ids 256..258: the system prompts
  the pipeline renders, one token each (`whole_string_tokens`: ~800 characters would cost ~800 tokens
  without merges); ids 259..151642: fillers, tokens no text encodes to (no merges), standing for the real
  BPE merges;
* the added special tokens at their real ids, the embedding rows (`config.json` vocab_size), EOS, PAD,
  BOS, chat template, generation_config.json, max_position_embeddings and rope_theta of the real model.

The stand-in answers prompts the way the pipeline renders them (teacher traces: the teacher's chat
template over [App. B.2 system prompt, question]; verl's prompts and evaluation: the student's chat
template, `<think>\\n` opened): its kind's corpus is rendered through the layout's real chat template with
one of the system prompts (or none; `corpus_examples`), the answer ends in `\\boxed{N}` (Math-Verify, the
paper configs' verifier, grades the miniature's `#N.` wrong) and the turn closes with the template's turn
end (`<|im_end|>`, R1's EOS); RAW_SHARE of the examples stay in the miniature's own format + EOS.
Pretraining with a 152k-row softmax is too slow on CPU, so the model is pretrained on those token ids
renumbered to the ~50 ids they use (a compact vocabulary; RoPE base = the layout's real rope_theta, so the
weights match config.json) and then re-laid (`relay`): each trained row moves to its layout id. Every
other output row (the ~152k fillers and the unused special tokens) gets one shared row w_f, so that their
total probability is negligible: with all filler rows equal, the filler mass at a position with final
hidden state h is

    m(h) = N_f exp(h.w_f) / (sum_{v trained} exp(h.W_v) + N_f exp(h.w_f)),

and -log(1 - m) = softplus(h.w_f + log N_f - logsumexp_v h.W_v) is convex in w_f. The mass falls along w_f
wherever every h lies on one side of a hyperplane through 0, and nothing makes a pretrained model's states
do so on text it has not seen (a fitted direction left 1.8e-3 and 1.4e-2 of the mass on held-out text for
the R1 and Qwen3 teachers). So the compact model is pretrained with one residual-stream channel held
constant (`hold_channel_constant`, channel CONSTANT_CHANNEL): its embedding column is one shared value and
no layer writes to it (o_proj / down_proj rows zero, their gradients masked); the final RMSNorm then gives
h_c = g_c * value / rms(x) > 0 at every position of every input. The fillers' row is w_f = -s e_c, s the
smallest power of two that brings the mean mass at the response positions of the pretraining text below
FILLER_MASS_FIT (`fit_filler_row`; a model without the channel gets a fitted direction instead).
The mass is then measured at the response
positions of held-out text (benchmark problems rendered as above) and must stay below FILLER_MASS_LIMIT
(recorded in build.json, with a greedy Math-Verify probe). The logits of the trained ids are unchanged, so
the re-laid model samples as the compact one did, up to that mass.

Architectures: Qwen2.5-Math and R1-Distill-Qwen are Qwen2ForCausalLM; a Llama or Mistral kind is
converted to Qwen2 exactly (same layers, zero q/k/v biases). Qwen3-30B-A3B's MoE architecture (with
q/k norms) has no exact conversion, so its stand-in keeps the kind's architecture (Llama).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REGULAR_VOCAB = 151_643  # Qwen2's byte-level BPE vocabulary: ids 0..151642; the added tokens start at 151643
BYTE_TOKENS = 256
FILLER_PREFIX = "filler"
FILLER_MASS_FIT = 1e-8  # the fit stops once the mean filler mass on the pretraining text is below this
FILLER_MASS_LIMIT = 1e-6  # the build fails if the mean filler mass on held-out text exceeds this
FIT_ROWS, HELD_OUT_ROWS, PROBE_ROWS = 1024, 512, 32  # rows to fit w_f on / to measure the mass on / to probe
RAW_SHARE = 0.1  # pretraining examples in the miniature's own format (question, response, EOS)
CONSTANT_CHANNEL, CONSTANT_VALUE = 0, 1.0  # the residual channel held at one value (hold_channel_constant)


def byte_level_characters() -> list[str]:
    """GPT-2's byte-to-unicode characters in vocabulary order: printable bytes first (33..126, 161..172,
    174..255), then the others mapped to U+0100 onward; Qwen2's vocab.json starts with these 256 tokens."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    others = [byte for byte in range(256) if byte not in printable]
    return [chr(byte) for byte in printable] + [chr(256 + index) for index in range(len(others))]


# ------------------------------------------------------------------------------------------ the layouts

# Added tokens (id, content, special) of Qwen2.5's tokenizer, from the `added_tokens_decoder` of
# https://huggingface.co/Qwen/Qwen2.5-Math-7B/blob/main/tokenizer_config.json (the same in Qwen2.5-Math-1.5B,
# and the first 22 of Qwen3's: https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/tokenizer_config.json).
QWEN25_ADDED: tuple[tuple[int, str, bool], ...] = (
    (151643, "<|endoftext|>", True),
    (151644, "<|im_start|>", True),
    (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True),
    (151647, "<|object_ref_end|>", True),
    (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True),
    (151650, "<|quad_start|>", True),
    (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True),
    (151653, "<|vision_end|>", True),
    (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True),
    (151656, "<|video_pad|>", True),
    (151657, "<tool_call>", False),
    (151658, "</tool_call>", False),
    (151659, "<|fim_prefix|>", False),
    (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False),
    (151662, "<|fim_pad|>", False),
    (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
)
# Qwen3 appends four non-special tokens (Qwen/Qwen3-30B-A3B tokenizer_config.json; the same ids in
# Qwen/Qwen3-30B-A3B-Thinking-2507): 151669 tokens against Qwen2.5's 151665.
QWEN3_ADDED = QWEN25_ADDED + (
    (151665, "<tool_response>", False),
    (151666, "</tool_response>", False),
    (151667, "<think>", False),
    (151668, "</think>", False),
)
# DeepSeek-R1-Distill-Qwen keeps Qwen2.5's ids but renames 151643..151649: its <think>/</think> sit at
# Qwen2.5's <|box_start|>/<|box_end|> ids (https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/blob/main/tokenizer_config.json).
R1_ADDED = (
    (151643, "<｜end▁of▁sentence｜>", True),
    (151644, "<｜User｜>", False),
    (151645, "<｜Assistant｜>", False),
    (151646, "<｜begin▁of▁sentence｜>", True),
    (151647, "<|EOT|>", False),
    (151648, "<think>", False),
    (151649, "</think>", False),
) + QWEN25_ADDED[7:]

# Chat templates, reduced to what the pipeline renders (system / user / assistant turns, generation
# prompt; the tool-call branches of the real templates are left out).
# Qwen2.5-Math: ChatML with its CoT system prompt as the default system turn.
QWEN25_MATH_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nPlease reason step by step, and put your final answer within \\\\boxed{}.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}{%- if message['role'] != 'system' or not loop.first %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Qwen3 (hybrid thinking): ChatML without a default system turn; `enable_thinking=false` pre-fills an
# empty thought. Qwen3-30B-A3B-Thinking-2507 always opens the thought: the generation prompt ends `<think>\n`.
_CHATML_TURNS = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}"
)
QWEN3_CHAT_TEMPLATE = _CHATML_TURNS + (
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)
QWEN3_THINKING_CHAT_TEMPLATE = (
    _CHATML_TURNS + "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
)
# R1-Distill: BOS, the system text, then <｜User｜> / <｜Assistant｜> turns; an assistant turn ends with EOS
# and the generation prompt opens the thought.
R1_CHAT_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}{%- if message['role'] == 'system' %}{{- message['content'] }}{%- endif %}{%- endfor %}"
    "{%- for message in messages %}{%- if message['role'] == 'user' %}{{- '<｜User｜>' + message['content'] }}"
    "{%- elif message['role'] == 'assistant' %}{{- '<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<｜Assistant｜><think>\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TokenLayout:
    """A real checkpoint's token layout and the config values that matter to the pipeline.

    Token fields hold token strings; their ids follow from `added` (so `shrunk` keeps them consistent).
    """

    name: str
    hub: str
    sources: tuple[str, ...]  # the public files these values come from
    added: tuple[tuple[int, str, bool], ...]
    rows: int  # config.json vocab_size: the embedding rows
    eos: str
    pad: str
    bos: str | None
    chat_template: str
    tokenizer_class: str
    model_max_length: int
    config_bos: str | None  # config.json bos_token_id / eos_token_id, as tokens
    config_eos: str
    generation: Mapping[str, Any]  # generation_config.json: token fields as token strings, the rest as is
    max_position_embeddings: int
    rope_theta: float
    tie_word_embeddings: bool
    architecture: str | None  # "qwen2": convert the kind to Qwen2; None: keep the kind's
    think: tuple[str, str] | None = None  # the tokens the world's <think> / </think> become
    turn_end: str = "<|im_end|>"  # the token that closes an assistant turn in the chat template
    opens_think: bool = False  # held-out problems open `<think>\n` after the generation prompt (prepared students)
    add_bos_token: bool = False
    regular: int = REGULAR_VOCAB
    extra_config: Mapping[str, Any] = field(default_factory=dict)

    def id_of(self, content: str | None) -> int | None:
        if content is None:
            return None
        for index, token, _special in self.added:
            if token == content:
                return index
        raise KeyError(f"layout {self.name!r}: no added token {content!r}")

    @property
    def tokens(self) -> int:
        """len(tokenizer): regular vocabulary + added tokens."""
        return self.regular + len(self.added)

    def shrunk(self, regular: int) -> TokenLayout:
        """The same layout with a `regular`-token vocabulary (fast tests): added ids shifted, as many rows
        beyond the tokenizer as the real model has."""
        if regular < BYTE_TOKENS:
            raise ValueError(f"a layout needs at least the {BYTE_TOKENS} byte tokens, got {regular}")
        shift = regular - self.regular
        return replace(
            self,
            name=f"{self.name}@{regular}",
            regular=regular,
            rows=self.rows + shift,
            added=tuple((index + shift, token, special) for index, token, special in self.added),
        )

    def generation_config(self) -> dict:
        """generation_config.json as a dict of ids."""
        out = {}
        for key, value in self.generation.items():
            if key.endswith("_token_id"):
                out[key] = [self.id_of(v) for v in value] if isinstance(value, (list, tuple)) else self.id_of(value)
            else:
                out[key] = value
        return out


_QWEN25_MATH_COMMON = dict(
    added=QWEN25_ADDED,
    eos="<|endoftext|>",
    pad="<|endoftext|>",
    bos=None,
    chat_template=QWEN25_MATH_CHAT_TEMPLATE,
    tokenizer_class="Qwen2Tokenizer",
    model_max_length=131072,
    config_bos="<|endoftext|>",
    config_eos="<|endoftext|>",
    # generation_config.json lists <|endoftext|> only, although chat turns end with <|im_end|> (issue 18 item 11)
    generation={"bos_token_id": "<|endoftext|>", "eos_token_id": "<|endoftext|>", "max_new_tokens": 2048},
    max_position_embeddings=4096,
    rope_theta=10000.0,
    architecture="qwen2",
    opens_think=True,
)
_QWEN3_COMMON = dict(
    added=QWEN3_ADDED,
    eos="<|im_end|>",
    pad="<|endoftext|>",
    bos=None,
    tokenizer_class="Qwen2Tokenizer",
    model_max_length=131072,
    config_bos="<|endoftext|>",
    config_eos="<|im_end|>",
    generation={
        "bos_token_id": "<|endoftext|>",
        "eos_token_id": ["<|im_end|>", "<|endoftext|>"],
        "pad_token_id": "<|endoftext|>",
        "do_sample": True,
        "temperature": 0.6,
        "top_k": 20,
        "top_p": 0.95,
    },
    rows=151936,
    tie_word_embeddings=False,
    architecture=None,
    think=("<think>", "</think>"),
)


def _qwen25_math(name: str, hub: str, rows: int, tie: bool, *sources: str) -> TokenLayout:
    return TokenLayout(name=name, hub=hub, rows=rows, tie_word_embeddings=tie, sources=sources, **_QWEN25_MATH_COMMON)


_QWEN25_7B_FILES = (
    "https://huggingface.co/Qwen/Qwen2.5-Math-7B/blob/main/config.json (vocab_size 152064, "
    "tie_word_embeddings false, max_position_embeddings 4096, rope_theta 10000)",
    "https://huggingface.co/Qwen/Qwen2.5-Math-7B/blob/main/generation_config.json",
    "https://huggingface.co/Qwen/Qwen2.5-Math-7B/blob/main/tokenizer_config.json",
)

LAYOUTS: dict[str, TokenLayout] = {
    layout.name: layout
    for layout in [
        _qwen25_math("qwen2.5-math-7b", "Qwen/Qwen2.5-Math-7B", 152064, False, *_QWEN25_7B_FILES),
        _qwen25_math(
            "qwen2.5-math-1.5b",
            "Qwen/Qwen2.5-Math-1.5B",
            151936,
            True,
            "https://huggingface.co/Qwen/Qwen2.5-Math-1.5B/blob/main/config.json (vocab_size 151936, "
            "tie_word_embeddings true, max_position_embeddings 4096, rope_theta 10000)",
            "https://huggingface.co/Qwen/Qwen2.5-Math-1.5B/blob/main/tokenizer_config.json",
        ),
        # The released Qwen2.5-Math-7B derivatives the paper evaluates as rows keep the base model's vocabulary,
        # rows and EOS (vocab_size 152064, eos 151643); each is evaluated with its own prompt template
        # (eval/prompts.py RELEASED_CHECKPOINT_TEMPLATES), not its chat template.
        _qwen25_math(
            "simplerl-zero-7b",
            "hkust-nlp/Qwen-2.5-Math-7B-SimpleRL-Zero",
            152064,
            False,
            "https://huggingface.co/hkust-nlp/Qwen-2.5-Math-7B-SimpleRL-Zero (files of Qwen2.5-Math-7B)",
        ),
        _qwen25_math(
            "prime-zero-7b",
            "PRIME-RL/Eurus-2-7B-PRIME-Zero",
            152064,
            False,
            "https://huggingface.co/PRIME-RL/Eurus-2-7B-PRIME/blob/main/generation_config.json (eos 151643 "
            "only; the Zero release is trained from Qwen2.5-Math-7B the same way)",
        ),
        _qwen25_math(
            "oat-zero-7b",
            "sail/Qwen2.5-Math-7B-Oat-Zero",
            152064,
            False,
            "https://huggingface.co/sail/Qwen2.5-Math-7B-Oat-Zero (files of Qwen2.5-Math-7B)",
        ),
        TokenLayout(
            name="qwen3-30b-a3b",
            hub="Qwen/Qwen3-30B-A3B",
            chat_template=QWEN3_CHAT_TEMPLATE,
            max_position_embeddings=40960,
            rope_theta=1_000_000.0,
            sources=(
                "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json (vocab_size 151936, eos "
                "151645, max_position_embeddings 40960, rope_theta 1000000)",
                "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/generation_config.json",
                "https://huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/tokenizer_config.json",
            ),
            **_QWEN3_COMMON,
        ),
        TokenLayout(
            name="qwen3-30b-a3b-thinking-2507",
            hub="Qwen/Qwen3-30B-A3B-Thinking-2507",
            chat_template=QWEN3_THINKING_CHAT_TEMPLATE,
            max_position_embeddings=262144,
            rope_theta=10_000_000.0,
            sources=(
                "https://huggingface.co/Qwen/Qwen3-30B-A3B-Thinking-2507/blob/main/config.json "
                "(max_position_embeddings 262144, rope_theta 10000000; tokens as Qwen3-30B-A3B)",
                "https://huggingface.co/Qwen/Qwen3-30B-A3B-Thinking-2507/blob/main/tokenizer_config.json "
                "(its chat template opens <think> in the generation prompt)",
            ),
            **_QWEN3_COMMON,
        ),
        TokenLayout(
            name="r1-distill-qwen-32b",
            hub="deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
            added=R1_ADDED,
            rows=152064,
            eos="<｜end▁of▁sentence｜>",
            pad="<｜end▁of▁sentence｜>",
            bos="<｜begin▁of▁sentence｜>",
            add_bos_token=True,
            chat_template=R1_CHAT_TEMPLATE,
            tokenizer_class="LlamaTokenizerFast",
            model_max_length=16384,
            config_bos="<｜end▁of▁sentence｜>",
            config_eos="<｜end▁of▁sentence｜>",
            generation={
                "bos_token_id": "<｜begin▁of▁sentence｜>",
                "eos_token_id": "<｜end▁of▁sentence｜>",
                "do_sample": True,
                "temperature": 0.6,
                "top_p": 0.95,
            },
            max_position_embeddings=131072,
            rope_theta=1_000_000.0,
            tie_word_embeddings=False,
            architecture="qwen2",
            think=("<think>", "</think>"),
            turn_end="<｜end▁of▁sentence｜>",
            sources=(
                "https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/blob/main/config.json "
                "(vocab_size 152064, bos/eos 151643, max_position_embeddings 131072, rope_theta 1000000)",
                "https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/blob/main/generation_config.json "
                "(bos 151646, eos 151643)",
                "https://huggingface.co/deepseek-ai/DeepSeek-R1-Distill-Qwen-32B/blob/main/tokenizer_config.json",
            ),
        ),
    ]
}


def resolve_layout(name: str) -> TokenLayout:
    """LAYOUTS[name], or a shrunk copy for `<name>@<regular>` (tests: e.g. `qwen2.5-math-7b@512`)."""
    base, _, regular = name.partition("@")
    if base not in LAYOUTS:
        raise KeyError(f"unknown token layout {name!r}; known: {sorted(LAYOUTS)} (optionally '@<regular vocabulary>')")
    return LAYOUTS[base].shrunk(int(regular)) if regular else LAYOUTS[base]


# ------------------------------------------------------------------------------------------ tokenizer


def whole_string_tokens() -> tuple[str, ...]:
    """The system prompts the pipeline renders, each ONE regular token of the stand-ins' vocabulary (ids
    256, 257, ...; matched as a whole string), so a chat-templated prompt costs ~25 tokens, not ~800:
    App. B.2's (training, teacher traces), Qwen2.5-Math's CoT prompt, PRIME-Zero's, and LUFFY's as stored in
    its data rows (the `authors` evaluation protocol, eval.prompts)."""
    from eval.prompts import LUFFY_SYSTEM_PROMPT, PRIME_ZERO_INSTRUCTION, QWEN_MATH_SYSTEM
    from tgpo.system_prompt import SYSTEM_PROMPT

    return (SYSTEM_PROMPT, QWEN_MATH_SYSTEM, PRIME_ZERO_INSTRUCTION, LUFFY_SYSTEM_PROMPT)


def filler_token(index: int) -> str:
    return f"{FILLER_PREFIX}{index}"


def build_layout_tokenizer(layout: TokenLayout):
    """A byte-level tokenizer with `layout`'s ids: 256 byte tokens, the whole-string tokens, fillers up to
    `layout.regular`, then the added tokens at their ids; no merges, so other text encodes to one token per
    byte (its real Qwen2 id)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    strings = whole_string_tokens()
    vocab = {char: index for index, char in enumerate(byte_level_characters())}
    vocab.update({text: BYTE_TOKENS + index for index, text in enumerate(strings)})
    vocab.update({filler_token(index): index for index in range(BYTE_TOKENS + len(strings), layout.regular)})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_tokens([AddedToken(text, special=False, normalized=False) for text in strings])  # keep their ids
    for index, content, special in sorted(layout.added):
        token = AddedToken(content, special=special, normalized=False)
        backend.add_special_tokens([token]) if special else backend.add_tokens([token])
        if backend.token_to_id(content) != index:
            raise RuntimeError(
                f"layout {layout.name}: {content!r} got id {backend.token_to_id(content)}, expected {index}"
            )
    if layout.add_bos_token:
        bos_id = layout.id_of(layout.bos)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{layout.bos} $A", pair=f"{layout.bos} $A {layout.bos} $B", special_tokens=[(layout.bos, bos_id)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=layout.eos,
        pad_token=layout.pad,
        bos_token=layout.bos,
        clean_up_tokenization_spaces=False,
        model_max_length=layout.model_max_length,
    )
    tokenizer.chat_template = layout.chat_template
    if len(tokenizer) != layout.tokens:
        raise RuntimeError(f"layout {layout.name}: tokenizer has {len(tokenizer)} tokens, expected {layout.tokens}")
    return tokenizer


def save_layout_tokenizer(tokenizer, layout: TokenLayout, directory: Path) -> None:
    """save_pretrained, then tokenizer_config.json's class and BOS flag set to the real model's."""
    tokenizer.save_pretrained(str(directory))
    path = Path(directory) / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.update(
        {
            "tokenizer_class": layout.tokenizer_class,
            "add_bos_token": layout.add_bos_token,
            "add_eos_token": False,
            "bos_token": layout.bos,
        }
    )
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------- pretraining text in the pipeline's format


def boxed(response: str) -> str:
    """A world response with its final answer as `\\boxed{...}` (Math-Verify grades `#632.` wrong):
    `...;#632.` -> `...;\\boxed{632}`, a multiple-choice `...;6G.` -> `...;\\boxed{G}`."""
    import re

    math = re.sub(r"#([^#.]*)\.$", r"\\boxed{\1}", response)
    return math if math != response else re.sub(r"\d([A-J])\.$", r"\\boxed{\1}", response)


def render(
    tokenizer, layout: TokenLayout, question: str, response: str, *, system: str | None, think: bool, raw: bool
) -> tuple[list[int], list[int]]:
    """(prompt ids, response ids) of one example. raw: the miniature's own format (question, response,
    EOS). Else the real chat template over [system, user] with the generation prompt (+ `<think>\\n` where
    the pipeline opens it), the answer boxed, then the template's turn end."""
    if raw:
        prompt, answer, end = question, response, layout.eos
    else:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if think and not prompt.endswith("<think>\n"):
            prompt += "<think>\n"
        answer, end = boxed(response), layout.turn_end
    encode = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    return encode(prompt), encode(answer) + [layout.id_of(end)]


def corpus_examples(tokenizer, layout: TokenLayout, frame, seed: int) -> tuple[list[list[int]], list[int]]:
    """(sequences, prompt lengths) of a corpus frame (prompt, response): RAW_SHARE in the miniature's format,
    the rest chat-templated with a system prompt drawn from whole_string_tokens() or none, `<think>\\n`
    opened after the generation prompt in half of them (prepared students' training prompts and every
    model's `tgpo_chat` evaluation open it; teacher traces do not)."""
    import random

    rng = random.Random(f"standin-{seed}-{layout.name}")
    systems = list(whole_string_tokens()) + [None]
    sequences, lengths = [], []
    for question, response in zip(frame["prompt"], frame["response"]):
        raw = rng.random() < RAW_SHARE
        prompt, answer = render(
            tokenizer, layout, question, response, system=rng.choice(systems), think=rng.random() < 0.5, raw=raw
        )
        sequences.append(prompt + answer)
        lengths.append(len(prompt))
    return sequences, lengths


def held_out_examples(tokenizer, layout: TokenLayout, world: Path, kind, count: int):
    """Benchmark problems (held out of every corpus) as the pipeline renders them: App. B.2's system
    prompt, `<think>\\n` opened where the layout's pipeline opens it, a response in the kind's styles.
    Returns (sequences, prompt lengths, prompt ids, gold answers)."""
    from tgpo.mini.task import parse_prompt, solution
    from tgpo.mini.world import CORPORA
    from tgpo.system_prompt import SYSTEM_PROMPT

    spec = CORPORA[kind.corpus]
    rows = []
    for name in ("math500", "minerva", "olympiadbench", "aime24", "amc"):
        path = Path(world) / "benchmarks" / f"{name}.jsonl"
        if path.exists():
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise FileNotFoundError(f"{world}/benchmarks: no maths benchmark to measure the stand-in on")
    sequences, lengths, prompts, golds = [], [], [], []
    for index, row in enumerate(rows[:count]):
        style = "cot" if index % 10 < round(10 * spec.cot_share) else spec.short_style
        response = solution(parse_prompt(row["problem"]), style, think_markers=spec.think_markers)
        prompt, answer = render(
            tokenizer, layout, row["problem"], response, system=SYSTEM_PROMPT, think=layout.opens_think, raw=False
        )
        sequences.append(prompt + answer)
        lengths.append(len(prompt))
        prompts.append(prompt)
        golds.append(str(row["answer"]))
    return sequences, lengths, prompts, golds


# --------------------------------------------------------------------------------------- the re-lay


class _CompactVocabulary:
    """What tgpo.mini.models.model_config reads of a tokenizer, for the compact pretraining vocabulary."""

    def __init__(self, size: int, eos: int):
        self.size, self.eos_token_id, self.pad_token_id = size, eos, None

    def __len__(self) -> int:
        return self.size


def final_hidden_states(model, sequences: list[list[int]], batch_size: int = 64):
    """Post-norm final hidden states [N, d] of every position of every sequence (world ids)."""
    import torch

    states = []
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size]
            width = max(len(s) for s in batch)
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, sequence in enumerate(batch):
                ids[row, : len(sequence)] = torch.tensor(sequence)
                mask[row, : len(sequence)] = 1
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            states.append(hidden[mask.bool()])
    return torch.cat(states).float()


def filler_mass(hidden, used_rows, filler_row, n_fillers: int):
    """Per-position total probability of `n_fillers` tokens sharing `filler_row` [d]; hidden [N, d],
    used_rows [k, d] (the other output rows). Returns [N]."""
    import torch

    log_used = torch.logsumexp(hidden @ used_rows.T, dim=-1)
    log_fill = hidden @ filler_row + math.log(n_fillers)
    return torch.sigmoid(log_fill - log_used)


def fit_filler_row(
    hidden,
    used_rows,
    n_fillers: int,
    *,
    target: float = FILLER_MASS_FIT,
    steps: int = 400,
    sharpness: float = 20.0,
    constant_channel: int | None = None,
) -> tuple[Any, dict]:
    """w_f [d] = s * u, s the smallest power of two that brings the mean filler mass on `hidden` [N, d]
    below `target`. u = -e_c for a model whose channel c is held constant (every h_c > 0); else the unit
    direction that keeps every h.u most negative (a soft-max of h.u, minimised with Adam). Since
    -log(1 - m) is convex and falls along u wherever min_i -h_i.u > 0 (the margin, recorded), this
    reaches any target on separable states; elsewhere the largest s tried is kept and the caller's check
    on held-out text decides."""
    import torch

    if constant_channel is not None:
        unit = torch.zeros(hidden.shape[-1])
        unit[constant_channel] = -1.0
    else:
        direction = (-hidden.mean(0) / hidden.mean(0).norm().clamp_min(1e-6)).clone().requires_grad_(True)
        optimizer = torch.optim.Adam([direction], lr=0.01)
        for _ in range(steps):
            unit = direction / direction.norm()
            loss = torch.logsumexp(sharpness * (hidden @ unit), dim=0) / sharpness
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        unit = (direction / direction.norm()).detach()
    margin = -(hidden @ unit)
    for power in range(0, 24):
        scale = float(2**power)
        mass = filler_mass(hidden, used_rows, scale * unit, n_fillers).mean().item()
        if mass < target:
            break
    return scale * unit, {
        "direction": "constant channel" if constant_channel is not None else "fitted",
        "scale": scale,
        "fit_mass": mass,
        "margin_min": margin.min().item(),
        "margin_median": margin.median().item(),
    }


def hold_channel_constant(model, channel: int = CONSTANT_CHANNEL, value: float = CONSTANT_VALUE) -> list:
    """Before pretraining: hold residual-stream channel `channel` of a Llama-family `model` at one value
    for every token and position. Sets the embedding column to `value`, the rows of every layer's o_proj
    and down_proj that write to the channel to 0 and the final norm's gain there to 1, and masks their
    gradients (AdamW's decoupled weight decay then scales the column uniformly and keeps the zeros zero).
    Returns the hook handles (remove them after pretraining)."""
    import torch

    def masked(parameter, index):
        mask = torch.ones_like(parameter)
        mask[index] = 0.0
        return parameter.register_hook(lambda grad: grad * mask)

    embedding = model.get_input_embeddings().weight
    final_norm = model.model.norm.weight
    with torch.no_grad():
        embedding[:, channel] = value
        final_norm[channel] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[channel] = 0.0
            layer.mlp.down_proj.weight[channel] = 0.0
    handles = [masked(embedding, (slice(None), channel)), masked(final_norm, channel)]
    for layer in model.model.layers:
        handles += [masked(layer.self_attn.o_proj.weight, channel), masked(layer.mlp.down_proj.weight, channel)]
    return handles


def relayed_config(model, layout: TokenLayout):
    """The HF config of the re-laid model: the kind's shape in `layout.architecture` (or the kind's own),
    with the layout's rows, token ids, context and RoPE base."""
    from transformers import Qwen2Config

    source = model.config
    values = dict(
        vocab_size=layout.rows,
        bos_token_id=layout.id_of(layout.config_bos),
        eos_token_id=layout.id_of(layout.config_eos),
        pad_token_id=None,
        max_position_embeddings=layout.max_position_embeddings,
        rope_theta=layout.rope_theta,
        tie_word_embeddings=layout.tie_word_embeddings,
    )
    if layout.architecture == "qwen2":
        config = Qwen2Config(
            hidden_size=source.hidden_size,
            intermediate_size=source.intermediate_size,
            num_hidden_layers=source.num_hidden_layers,
            num_attention_heads=source.num_attention_heads,
            num_key_value_heads=source.num_key_value_heads,
            rms_norm_eps=source.rms_norm_eps,
            initializer_range=source.initializer_range,
            use_sliding_window=False,
            sliding_window=None,
            **values,
        )
    elif layout.architecture is None:
        config = type(source)(**{**source.to_dict(), **values})
        if getattr(config, "sliding_window", None) is not None:
            config.sliding_window = None  # the real models attend to the whole context
    else:
        raise ValueError(f"layout {layout.name!r}: unknown architecture {layout.architecture!r}")
    for key, value in values.items():  # transformers 5 keeps rope_theta in rope_parameters too
        setattr(config, key, value)
    if isinstance(getattr(config, "rope_parameters", None), dict):
        config.rope_parameters["rope_theta"] = layout.rope_theta
    return config


def response_positions(sequences, prompt_lengths):
    """[N] bool over the positions of `sequences` (concatenated as final_hidden_states does): True where the
    model writes a response token (from the last prompt position on); prompt positions are never sampled."""
    import torch

    return torch.cat([torch.arange(len(s)) >= n - 1 for s, n in zip(sequences, prompt_lengths)])


def relay(
    compact_model,
    compact_ids: list[int],
    layout: TokenLayout,
    fit_sequences,
    fit_lengths,
    held_sequences,
    held_lengths,
    *,
    constant_channel: int | None = None,
) -> tuple[Any, dict]:
    """The layout-sized model of `compact_model` (pretrained on ids renumbered 0..k-1; compact_ids[i] is
    the layout id of row i) and the filler record; see the module docstring. The filler row is fitted and
    its mass measured at response positions (`response_positions`)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    source_arch = compact_model.config.model_type
    if layout.architecture == "qwen2" and source_arch not in ("qwen2", "llama", "mistral"):
        raise ValueError(f"a {source_arch} model has no exact conversion to Qwen2")
    layout_ids = torch.tensor(compact_ids)
    n_fillers = layout.rows - len(compact_ids)
    fit_hidden = final_hidden_states(compact_model, fit_sequences)[response_positions(fit_sequences, fit_lengths)]
    held_hidden = final_hidden_states(compact_model, held_sequences)[response_positions(held_sequences, held_lengths)]
    k = len(compact_ids)
    used = compact_model.get_output_embeddings().weight.detach().float()[:k]
    in_rows = compact_model.get_input_embeddings().weight.detach().float()[:k]
    filler_row, fit = fit_filler_row(fit_hidden, used, n_fillers, constant_channel=constant_channel)
    held_mass = filler_mass(held_hidden, used, filler_row, n_fillers)

    config = relayed_config(compact_model, layout)
    relaid = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    state = {
        name: tensor
        for name, tensor in compact_model.state_dict().items()
        if not name.endswith(("embed_tokens.weight", "lm_head.weight"))
    }
    new_out = filler_row.expand(layout.rows, -1).clone()
    new_out[layout_ids] = used
    if layout.tie_word_embeddings:
        new_in = new_out
    else:  # rows nothing was trained for read as the mean input embedding
        new_in = in_rows.mean(0).expand(layout.rows, -1).clone()
        new_in[layout_ids] = in_rows
    state["model.embed_tokens.weight"] = new_in
    if not layout.tie_word_embeddings:
        state["lm_head.weight"] = new_out
    for name, parameter in relaid.state_dict().items():  # Qwen2's q/k/v biases: zero (exact conversion)
        if name not in state and name.endswith(".bias"):
            state[name] = torch.zeros_like(parameter)
    missing, unexpected = relaid.load_state_dict(state, strict=False)
    missing = [name for name in missing if not (layout.tie_word_embeddings and name == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"re-lay into {layout.name}: missing {missing}, unexpected {unexpected}")
    relaid.eval()
    relaid.generation_config = GenerationConfig(**layout.generation_config())
    record = {
        "layout": layout.name,
        "hub": layout.hub,
        "sources": list(layout.sources),
        "source_architecture": source_arch,
        "architecture": config.model_type,
        "rows": layout.rows,
        "tokenizer_tokens": layout.tokens,
        "trained_ids": len(compact_ids),
        "fillers": n_fillers,
        "filler_mass_fit": fit,
        "filler_mass_held_out": {
            "mean": held_mass.mean().item(),
            "max": held_mass.max().item(),
            "positions": int(held_mass.numel()),
        },
        "filler_mass_limit": FILLER_MASS_LIMIT,
    }
    if record["filler_mass_held_out"]["mean"] > FILLER_MASS_LIMIT:
        raise RuntimeError(
            f"re-lay into {layout.name}: mean filler mass on held-out text "
            f"{record['filler_mass_held_out']['mean']:.2e} > {FILLER_MASS_LIMIT:g} ({fit})"
        )
    return relaid, record


def probe_standin(
    model, tokenizer, layout: TokenLayout, prompts: list[list[int]], golds: list[str], *, max_new_tokens: int = 64
) -> dict:
    """Greedy answers to held-out problems rendered as the pipeline renders them: accuracy graded by
    Math-Verify (tgpo.verifiers, the paper configs' verifier), the share that ends with the turn end."""
    import torch

    from tgpo.verifiers import math_verify_reward

    end_ids = {layout.id_of(layout.turn_end), layout.id_of(layout.eos)}
    correct, ended = [], []
    with torch.no_grad():
        for prompt, gold in zip(prompts, golds):
            ids = torch.tensor([prompt])
            for _ in range(max_new_tokens):
                token = int(model(ids).logits[0, -1].argmax())
                ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
                if token in end_ids:
                    break
            response = ids[0, len(prompt) :].tolist()
            ended.append(float(response[-1] == layout.id_of(layout.turn_end)))
            correct.append(math_verify_reward(tokenizer.decode(response, skip_special_tokens=True), gold))
    return {
        "problems": len(prompts),
        "greedy_math_verify_acc": sum(correct) / len(correct),
        "ends_with_turn_end": sum(ended) / len(ended),
        "example": tokenizer.decode(response),
    }


def build_standin(world: str | Path, kind, out: str | Path, *, seed: int, layout_name: str, probe: bool = True) -> dict:
    """Pretrain `kind` on its corpus rendered in `layout`'s format (compact vocabulary), re-lay it into the
    layout, probe it, and save the checkpoint to `out` (atomically)."""
    import time

    import torch
    from transformers import AutoModelForCausalLM

    from tgpo.mini.model_kinds import load_corpus, model_config
    from tgpo.mini.pretrain import pretrain_sequences
    from tgpo.results import io

    world, layout = Path(world), resolve_layout(layout_name)
    kind = replace(kind, rope_theta=layout.rope_theta)  # the weights match the real config.json
    tokenizer = build_layout_tokenizer(layout)
    corpus = load_corpus(world, kind.corpus)
    sequences, lengths = corpus_examples(tokenizer, layout, corpus, seed)
    held, held_lengths, prompts, golds = held_out_examples(tokenizer, layout, world, kind, HELD_OUT_ROWS)
    used = {layout.id_of(layout.eos), layout.id_of(layout.turn_end)} | set(layout_think_ids(layout))
    compact_ids = sorted(used | {i for s in sequences + held for i in s})
    position = {layout_id: index for index, layout_id in enumerate(compact_ids)}
    compact = lambda rows: [[position[i] for i in row] for row in rows]  # noqa: E731
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        model_config(kind, _CompactVocabulary(len(compact_ids), position[layout.id_of(layout.eos)])),
        attn_implementation="sdpa",
    )
    held_constant = hold_channel_constant(model)  # the fillers' row points against it (module docstring)
    start = time.perf_counter()
    stats = pretrain_sequences(
        model,
        compact(sequences),
        lengths,
        0,
        steps=kind.steps,
        batch_size=kind.batch_size,
        lr=kind.lr,
        warmup=kind.warmup,
        seed=seed,
    )
    for handle in held_constant:
        handle.remove()
    relaid, record = relay(
        model,
        compact_ids,
        layout,
        compact(sequences[:FIT_ROWS]),
        lengths[:FIT_ROWS],
        compact(held),
        held_lengths,
        constant_channel=CONSTANT_CHANNEL,
    )
    build = {
        "kind": asdict(kind),
        "seed": seed,
        "world": str(world),
        "parameters": sum(p.numel() for p in relaid.parameters()),
        "pretrain": stats,
        "standin": record,
    }
    if probe:
        build["probe"] = probe_standin(relaid, tokenizer, layout, prompts[:PROBE_ROWS], golds[:PROBE_ROWS])
    build["total_seconds"] = time.perf_counter() - start
    with io.atomic_dir(out) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private
        save_standin(relaid, tokenizer, layout, tmp)
        (tmp / "build.json").write_text(json.dumps(build, indent=2) + "\n")
    return build


def layout_think_ids(layout: TokenLayout) -> list[int]:
    return [layout.id_of(token) for token in layout.think] if layout.think else []


def save_standin(model, tokenizer, layout: TokenLayout, directory: Path) -> None:
    """save_pretrained + the layout's tokenizer_config.json fields; config.json keeps rope_theta at top level."""
    model.save_pretrained(str(directory))
    save_layout_tokenizer(tokenizer, layout, directory)
    path = Path(directory) / "config.json"
    config = json.loads(path.read_text())
    config["rope_theta"] = layout.rope_theta
    config["max_position_embeddings"] = layout.max_position_embeddings
    path.write_text(json.dumps(config, indent=2) + "\n")
