"""prepare-data (OpenR1-Math-46k-8192 -> prompt table + verl parquet) and the teacher-trace filter."""

from __future__ import annotations

import json

import pytest

pd = pytest.importorskip("pandas")

from eval.prompts import SYSTEM_PROMPT  # noqa: E402
from tgpo.verl.data_prep import prepare_data, prompt_table  # noqa: E402
from tgpo.verl.teacher_traces import sft_table, teacher_prompts, trace_text, verified_traces  # noqa: E402


def luffy_row(index: int, question: str, answer: str, trace: str | None = None) -> dict:
    """A row in LUFFY's OpenR1-Math-46k-8192 release format."""
    row = {
        "data_source": "openr1",
        "ability": "math",
        "prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": question}],
        "reward_model": {"style": "rule", "ground_truth": answer},
        "extra_info": {"index": index, "split": "default"},
    }
    if trace is not None:
        row["target"] = [{"role": "assistant", "content": trace}]
    return row


@pytest.fixture
def luffy_parquet(tmp_path):
    rows = [
        luffy_row(0, "What is $1+1$?", "2", "<think>\n1+1=2</think>\n\\boxed{2}"),
        luffy_row(1, "Compute $3 \\cdot 4$.", "12", "<think>\nx</think>\n\\boxed{12}"),
        luffy_row(2, "Simplify $\\frac{2}{4}$.", "\\frac{1}{2}", "<think>\ny</think>\n\\boxed{\\frac12}"),
    ]
    path = tmp_path / "openr1.parquet"
    pd.DataFrame(rows).to_parquet(path, index=False)
    return path


def test_prepare_data_writes_our_table_and_verl_parquet(luffy_parquet, tmp_path):
    out = tmp_path / "data" / "train.parquet"
    stats = prepare_data(str(luffy_parquet), out, tmp_path / "data" / "verl")
    assert stats["rows"] == 3 and stats["with_target"]

    ours = pd.read_parquet(out)
    assert list(ours.columns[:3]) == ["prompt_id", "prompt", "answer"]
    assert ours["prompt_id"].tolist() == [0, 1, 2]
    assert ours["prompt"].tolist()[1] == "Compute $3 \\cdot 4$."
    assert ours["answer"].tolist() == ["2", "12", "\\frac{1}{2}"]

    verl = pd.read_parquet(tmp_path / "data" / "verl" / "train.parquet")
    row = verl.iloc[2]
    messages = [dict(m) for m in row["prompt"]]
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Simplify $\\frac{2}{4}$."},
    ]
    assert row["data_source"] == "openr1_math" and row["ability"] == "math"
    assert dict(row["reward_model"]) == {"style": "rule", "ground_truth": "\\frac{1}{2}"}
    assert row["extra_info"]["index"] == 2 and row["extra_info"]["split"] == "train"
    assert dict(row["extra_info"]["target"][0]) == {
        "role": "assistant",
        "content": "<think>\ny</think>\n\\boxed{\\frac12}",
    }
    assert row["prompt_id"] == 2 and row["answer"] == "\\frac{1}{2}"
    val = pd.read_parquet(tmp_path / "data" / "verl" / "val.parquet")
    assert len(val) == 3 and val.iloc[0]["extra_info"]["split"] == "val"


def test_flat_jsonl_source_without_target(tmp_path):
    path = tmp_path / "flat.jsonl"
    path.write_text(
        "\n".join(json.dumps(r) for r in [{"problem": "1+2?", "answer": "3"}, {"question": "2*5?", "answer": 10}])
    )
    out = tmp_path / "train.parquet"
    prepare_data(str(path), out, tmp_path / "verl")
    frame = pd.read_parquet(out)
    assert frame["prompt"].tolist() == ["1+2?", "2*5?"] and frame["answer"].tolist() == ["3", "10"]
    assert "target" not in frame
    assert "target" not in pd.read_parquet(tmp_path / "verl" / "train.parquet").iloc[0]["extra_info"]


def test_rows_without_problem_or_answer_name_the_file_and_field():
    good = luffy_row(0, "q", "1")
    no_answer = {**luffy_row(1, "q", "1"), "reward_model": {"style": "rule", "ground_truth": None}}
    with pytest.raises(
        ValueError, match=r"src\.parquet: row 1: no gold answer \(expected 'reward_model\.ground_truth'"
    ):
        prompt_table([good, no_answer], "src.parquet")
    no_user = {**luffy_row(1, "q", "1"), "prompt": [{"role": "system", "content": "s"}]}
    with pytest.raises(ValueError, match=r"src\.parquet: row 1: field 'prompt' has no non-empty user message"):
        prompt_table([good, no_user], "src.parquet")
    with pytest.raises(ValueError, match=r"f\.jsonl: row 0: no problem text"):
        prompt_table([{"answer": "3"}], "f.jsonl")


def test_verified_traces_keeps_finished_correct_responses():
    frame = pd.DataFrame(
        {
            "prompt_id": [0, 1, 2, 3, 4],
            "prompt": ["1+1?", "3*4?", "half?", "1+1?", "3*4?"],
            "answer": ["2", "12", "\\frac{1}{2}", "2", "12"],
            "response": [
                "<think>\nadd</think>\nThe answer is \\boxed{2}.",  # correct
                "<think>\nmultiply</think>\n\\boxed{13}",  # wrong
                "<think>\nhalf</think>\n$\\frac{2}{4}$ so \\boxed{0.5}",  # correct (equivalent form)
                "%%%% \\boxed{ \x00 garbage {{{",  # garbage
                "<think>\n3*4 is \\boxed{12} but wait",
            ],  # cut at the token limit
            "finish_reason": ["stop", "stop", "stop", "stop", "length"],
        }
    )
    kept, stats = verified_traces(frame, workers=1, timeout_s=20, progress=False)
    assert kept["prompt_id"].tolist() == [0, 2]
    assert kept["response"].tolist()[0] == "add</think>\nThe answer is \\boxed{2}."  # opening <think> removed
    assert stats["responses"] == 5 and stats["kept"] == 2 and stats["unfinished"] == 1
    assert list(kept.columns) == ["prompt_id", "prompt", "answer", "response"]
    with pytest.raises(KeyError, match="missing columns \\['response'\\]"):
        verified_traces(frame.drop(columns=["response"]), workers=1, progress=False)


def test_trace_text_and_sft_rows():
    assert trace_text("<think>\nabc</think>x") == "abc</think>x"
    assert trace_text("abc</think>x") == "abc</think>x"
    kept = pd.DataFrame({"prompt_id": [7], "prompt": ["q"], "answer": ["1"], "response": ["r"]})
    messages = sft_table(kept, "S").iloc[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant"] and messages[2]["content"] == "r"


def test_teacher_prompts_use_the_teacher_template():
    class Tok:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert not tokenize and add_generation_prompt
            return "|".join(f"{m['role']}:{m['content']}" for m in messages) + "|assistant:"

    assert teacher_prompts(Tok(), ["q1"], "S") == ["system:S|user:q1|assistant:"]
    Tok.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        teacher_prompts(Tok(), ["q1"], "S")


def test_teacher_traces_fails_clearly_without_vllm(monkeypatch):
    import sys

    from tgpo.verl import teacher_traces

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(RuntimeError, match="needs vLLM"):
        teacher_traces.generate(
            "m", ["p"], temperature=0.7, max_new_tokens=8, seed=0, tensor_parallel=1, max_model_len=None
        )


def test_traces_drop_only_the_teacher_tokens_the_student_cannot_represent():
    """The miniature's verl world: the teacher closes think-style answers with `</think>`, a token its
    tokenizer has and the student's has not; the trace keeps everything else, and the count is reported."""
    from tgpo.mini.tokenizer import build_student_tokenizer, build_teacher_tokenizer, encode
    from tgpo.verl.teacher_traces import strip_tokens, student_unrepresentable_tokens

    student, teacher = build_student_tokenizer(for_verl=True), build_teacher_tokenizer(for_verl=True)
    tokens = student_unrepresentable_tokens(teacher, student)
    assert tokens == ["</think>", "<think>", "<|im_end|>"]
    texts, removed = strip_tokens(["#06;13;17;</think>#1736.", "2+2+0=04;#1244."], tokens)
    assert texts == ["#06;13;17;#1736.", "2+2+0=04;#1244."] and removed == 1
    encode(student, texts[0])  # raises on characters outside the student's vocabulary
    assert student_unrepresentable_tokens(student, student) == []
