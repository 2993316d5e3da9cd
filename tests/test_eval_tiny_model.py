"""A tiny random HF model whose tokenizer covers printable ASCII, for the evaluation tests.

The conftest's char tokenizer covers digits only (the miniature world); benchmark prompts are English
and LaTeX, so the eval tests build their own (one token per printable ASCII character + newline). The model is a
Llama: transformers 5's AutoTokenizer replaces the saved tokenizer of a `qwen2` checkpoint by
Qwen2Tokenizer (qwen2 is in MODELS_WITH_INCORRECT_HUB_TOKENIZER_CLASS), which would re-tokenize the text.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest

EVAL_CHARS = sorted(set(string.printable) - set("\t\r\x0b\x0c"))
SPECIAL = ["<pad>", "<eos>", "<unk>"]


def build_ascii_model(directory: Path, *, seed: int = 0) -> Path:
    """Save a random Llama (hidden 32, 2 layers, 4096 positions) and an ASCII char tokenizer to `directory`."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    torch.set_num_threads(1)
    vocab = {token: index for index, token in enumerate(SPECIAL + EVAL_CHARS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def ascii_model(tmp_path_factory) -> Path:
    return build_ascii_model(tmp_path_factory.mktemp("eval_ascii_model"))


def test_ascii_tokenizer_round_trips_benchmark_text(tmp_path):
    from transformers import AutoTokenizer

    directory = build_ascii_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(directory)
    text = "User: Find $\\frac{1}{2}$ of 10.\n\nAssistant: <think>\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tokenizer.decode(ids) == text


def test_max_model_len_is_capped_at_the_model_context(tmp_path, capsys):
    """The authors' protocol asks vLLM for 16,384 tokens; a released Qwen2.5-Math-7B derivative declares
    4,096 (vLLM would refuse the longer window): it is evaluated within its own, and the log says so."""
    from transformers import Qwen2Config

    from eval.generation import context_within_model

    Qwen2Config(max_position_embeddings=4096).save_pretrained(tmp_path)
    assert context_within_model(16384, str(tmp_path)) == 4096
    assert "evaluating within 4096" in capsys.readouterr().out
    assert context_within_model(2048, str(tmp_path)) == 2048
    assert context_within_model(None, str(tmp_path)) is None
