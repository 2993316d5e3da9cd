"""prepare-model: RoPE/context in config.json, aligned vocabularies, <think> chat template (App. B.1)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tgpo.models.chat_template import think_chat_template  # noqa: E402
from tgpo.models.prepare import prepare_model, prepare_settings  # noqa: E402
from tgpo.models.rope_context import apply_rope_and_context  # noqa: E402
from tgpo.models.vocab_size import aligned_vocab_size, other_only_tokens  # noqa: E402

CHARS = list("0123456789+-=. abcdef")
STUDENT_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEACHER_EXTRA = ["<tool_response>", "</tool_response>", "<think>", "</think>"]
CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)


def char_tokenizer(extra_tokens: list[str]):
    """A character-level fast tokenizer: special tokens, then characters, then `extra_tokens` as added tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(STUDENT_SPECIAL + CHARS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(token, special=True) for token in STUDENT_SPECIAL])
    backend.add_tokens([AddedToken(token, special=token.startswith("<tool")) for token in extra_tokens])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tiny(kind: str, vocab_rows: int, tokenizer, directory, seed: int, tie: bool):
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    config_class = {"qwen2": Qwen2Config, "llama": LlamaConfig}[kind]
    config = config_class(
        vocab_size=vocab_rows,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        tie_word_embeddings=tie,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return model


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A Qwen2 student (24 tokens, 40 rows: padded to 8) and a Llama teacher (28 tokens, 64 rows)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("prep")
    student_tok, teacher_tok = char_tokenizer([]), char_tokenizer(TEACHER_EXTRA)
    assert (len(student_tok), len(teacher_tok)) == (24, 28)
    save_tiny("qwen2", 40, student_tok, root / "student", 0, tie=False)
    save_tiny("llama", 64, teacher_tok, root / "teacher", 1, tie=True)
    return root


def test_apply_rope_and_context_sets_every_reader_key():
    config = {
        "rope_theta": 10000.0,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "max_position_embeddings": 4096,
    }
    out = apply_rope_and_context(config, 40000, 16384)
    assert out["rope_theta"] == 40000.0 and out["rope_parameters"]["rope_theta"] == 40000.0
    assert out["max_position_embeddings"] == 16384
    assert config["rope_theta"] == 10000.0  # input untouched
    with pytest.raises(ValueError, match="yarn"):
        apply_rope_and_context({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, 40000, None)


def test_aligned_vocab_size_paper_models_and_rounding():
    # Qwen2.5-Math-7B (151665 tokens, 152064 rows) with Qwen3-30B-A3B (151669 tokens, 151936 rows).
    assert aligned_vocab_size(151665, 151669, 152064, 151936) == 151680  # ceil(151669 / 128) * 128
    assert aligned_vocab_size(24, 28, 40, 64) == 64  # larger matrix: 64 rows, padded to 64
    assert aligned_vocab_size(24, 28, 40, 36) == 32  # larger matrix: 40 rows, padded to gcd(40, 128) = 8
    assert aligned_vocab_size(30, 28, 30, 29) == 30  # odd row counts: no padding


def test_other_only_tokens_lists_the_teachers_extra_tokens_without_adding_them():
    # issue 18 item 10: the authors' data/align_tokenizer.py (helldog-star/TGPO) adds no token
    student_tok, teacher_tok = char_tokenizer([]), char_tokenizer(TEACHER_EXTRA)
    assert other_only_tokens(student_tok, teacher_tok) == TEACHER_EXTRA
    assert len(student_tok) == 24 and student_tok.convert_tokens_to_ids("<think>") != 26
    shuffled = char_tokenizer([])
    shuffled.add_tokens(["<zzz>"])  # id 24 here, while the teacher has <tool_response> at 24
    assert other_only_tokens(shuffled, char_tokenizer(["<zzz>"])) == []
    with pytest.raises(ValueError, match="disagree on shared ids"):
        other_only_tokens(char_tokenizer(["<tool_response>", "<zzz>"]), char_tokenizer(["<zzz>", "<tool_response>"]))


def test_think_chat_template_appends_think_after_assistant_tag():
    tokenizer = char_tokenizer(TEACHER_EXTRA)
    template = think_chat_template(tokenizer)
    messages = [{"role": "user", "content": "1+1"}]
    with_prompt = tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=True
    )
    without = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    assert with_prompt.endswith("<|im_start|>assistant\n<think>\n")
    assert without == tokenizer.apply_chat_template(messages, tokenize=False)  # training text unchanged
    tokenizer.chat_template = template
    assert think_chat_template(tokenizer) == template  # idempotent
    tokenizer.chat_template = "{{ messages[0]['content'] }}"
    with pytest.raises(ValueError, match="add_generation_prompt"):
        think_chat_template(tokenizer)


def test_prepare_settings_errors_name_the_key():
    config = {
        "models": {
            "s": {"hub": "x/s", "prepare": {"rope_theta": 4e4, "align_vocab_with": "t", "bad": 1}},
            "t": {"hub": "x/t"},
        }
    }
    with pytest.raises(ValueError, match=r"models\.s\.prepare: unknown keys \['bad'\]"):
        prepare_settings(config, "s")
    with pytest.raises(ValueError, match=r"models\.t\.prepare: missing"):
        prepare_settings(config, "t")


@pytest.mark.parametrize("which", ["student", "teacher"])
def test_prepare_model_end_to_end(pair, tmp_path, which):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    other = "teacher" if which == "student" else "student"
    source, other_source = pair / which, pair / other
    settings = {"rope_theta": 40000, "max_position_embeddings": 16384, "align_vocab_with": other}
    out = tmp_path / "prepared"
    record = prepare_model(str(source), out, settings, align_source=str(other_source))

    config_json = json.loads((out / "config.json").read_text())
    assert config_json["rope_theta"] == 40000.0 and config_json["max_position_embeddings"] == 16384
    loaded_config = AutoConfig.from_pretrained(out)
    assert loaded_config.rope_parameters["rope_theta"] == 40000.0
    assert loaded_config.max_position_embeddings == 16384
    expected_rows = aligned_vocab_size(24, 28, 40, 64)
    assert record["vocabulary"]["rows_after"] == expected_rows == loaded_config.vocab_size

    prepared = AutoModelForCausalLM.from_pretrained(out).eval()
    original = AutoModelForCausalLM.from_pretrained(source).eval()
    assert prepared.get_input_embeddings().weight.shape[0] == expected_rows
    assert prepared.get_output_embeddings().weight.shape[0] == expected_rows
    kept_rows = min(original.config.vocab_size, expected_rows)
    old_ids = torch.tensor([[3, 7, 11, 5, 20, 23, 1]])
    with torch.no_grad():
        # same weights, different theta: compare at theta 40000 on both sides
        original.config.rope_parameters["rope_theta"] = 40000.0
        original.model.rotary_emb.__init__(original.config)
        want = original(old_ids).logits[..., :kept_rows]
        got = prepared(old_ids).logits[..., :kept_rows]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)

    tokenizer = AutoTokenizer.from_pretrained(out)
    # the tokenizer is not extended (issue 18 item 10): the student keeps its 24 tokens
    assert len(tokenizer) == (24 if which == "student" else 28)
    assert record["vocabulary"]["added_tokens"] == []
    assert record["vocabulary"]["other_only_tokens"] == (TEACHER_EXTRA if which == "student" else [])
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "1"}], tokenize=False, add_generation_prompt=True
    )
    assert rendered.endswith("assistant\n<think>\n")
    assert json.loads((out / "prepare.json").read_text())["settings"] == settings
