"""The local training loop: a thin loop around tgpo's pure functions (Eq. 4-6 live in `tgpo.objectives.compose`).

One step of an on-policy method:
  1. sample G rollouts per prompt from the student (LUFFY: the last `off_policy_per_group` of each group
     are the prompt's teacher trace instead) and score them with the verifier -> r_i; PRIME samples
     prime_oversample x the prompts and keeps the first prompts_per_step groups whose accuracy is in
     [prime_accuracy_low, prime_accuracy_high] (a step where none is skips its update and says so in
     prime/kept_groups = 0);
  2. one teacher forward over the student's sequences -> teacher_token_ids / teacher_log_probs;
  3. old_log_probs (and the reference's log-probs) in inference mode, once, before any update;
     PRIME: implicit process rewards from the reward model, then one reward-model update;
  4. advantages = tgpo.objectives.compose.compute_advantages(...);
  5. `updates_per_step` AdamW updates, each on one mini-batch, accumulated over micro-batches whose
     losses are normalised by the mini-batch totals (total_tokens, total_sequences), so their sum is the
     mini-batch loss; the gradient norm before clipping is logged as actor/grad_norm.
SFT (rollouts=False) runs the same update on batches of teacher traces for `sft_epochs` epochs.

Checkpoints every `save_every` steps, resume from the last complete one of the same settings (a run
folder of other settings is moved aside first, tgpo.results.run_guard), metrics.jsonl, run.json (what ran).
A non-finite loss, gradient norm or advantage stops the run (TrainingDiverged) and keeps the last good
checkpoint.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from tgpo.config.resolve import TRAINING_DEFAULTS
from tgpo.engine import checkpoint as ckpt
from tgpo.engine.batch import RolloutBatch, build_batch, response_logits
from tgpo.engine.metrics import MetricsLog, combine_micro_batch_metrics, log_line, mean_metrics, non_finite_keys
from tgpo.engine.run_spec import RunSpec
from tgpo.engine.sampling import Rollout, eos_token_ids, pad_token_id, sample
from tgpo.engine.teacher import TeacherSignals, idle_teacher_signals, student_vocab_limit, teacher_signals
from tgpo.objectives.annealing import teacher_idle
from tgpo.results.layout import RunLayout
from tgpo.results.run_guard import claim_run_dir

# RunSpec fields that are settings (tgpo.config.resolve), recorded in run.json with their sources
RUN_SPEC_SETTINGS = tuple(sorted((set(TRAINING_DEFAULTS) | {"lr", "top_p"}) & {f.name for f in fields(RunSpec)}))


class TrainingDiverged(RuntimeError):
    """A loss, gradient norm or advantage became non-finite; the message names step, experiment, term."""


@dataclass
class TrainResult:
    output_dir: Path
    steps_done: int  # last completed step
    final_checkpoint: Path | None  # None when stopped early (stop_after_step)
    metrics: list[dict] = field(default_factory=list)


@dataclass
class Models:
    student: Any
    tokenizer: Any
    teacher: Any = None
    reference: Any = None
    reward_model: Any = None


# ---------------------------------------------------------------------------------------- loading
def quiet_transformers() -> None:
    """No per-load / per-save progress bars from transformers (the run has its own bar)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_causal_lm(path: Path, *, trainable: bool):
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as error:
        raise RuntimeError(f"cannot load a causal LM checkpoint from {str(path)!r}: {error}") from error
    model.train(trainable)
    if not trainable:
        model.requires_grad_(False)
    return model


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    return tokenizer


def load_models(spec: RunSpec, method, resume_dir: Path | None) -> Models:
    """Student (from the resume checkpoint if any), teacher, reference (the initial student by default),
    PRIME's reward model (initialised from the reference / initial student, or from the checkpoint)."""
    student_source = resume_dir if resume_dir is not None else spec.student_path
    models = Models(student=load_causal_lm(student_source, trainable=True), tokenizer=load_tokenizer(spec.student_path))
    if method.teacher_signal != "none":
        models.teacher = load_causal_lm(spec.teacher_path, trainable=False)
    initial = spec.reference_path or spec.student_path
    if method.needs_reference_model or method.needs_reward_model:
        models.reference = load_causal_lm(initial, trainable=False)
    if method.needs_reward_model:
        rm_source = resume_dir / ckpt.REWARD_MODEL_DIR if resume_dir is not None else initial
        models.reward_model = load_causal_lm(rm_source, trainable=True)
    return models


def read_table(path: Path, columns: tuple[str, ...], what: str):
    import pandas as pd

    try:
        table = pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - name the file
        raise RuntimeError(f"{path}: cannot read the {what} parquet: {error}") from error
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: the {what} table lacks column(s) {missing}; it has {list(table.columns)}")
    if len(table) == 0:
        raise ValueError(f"{path}: the {what} table is empty")
    return table.reset_index(drop=True)


# ---------------------------------------------------------------------------------------- schedule
def prompt_rows_for_step(n_rows: int, per_step: int, step: int, seed: int) -> list[int]:
    """Row indices of step `step` (1-based): consecutive slices of per-epoch seeded permutations."""
    first = (step - 1) * per_step
    rows = []
    for position in range(first, first + per_step):
        epoch, offset = divmod(position, n_rows)
        rows.append(int(_epoch_permutation(n_rows, seed, epoch)[offset]))
    return rows


_PERMUTATIONS: dict[tuple[int, int, int], torch.Tensor] = {}


def _epoch_permutation(n_rows: int, seed: int, epoch: int) -> torch.Tensor:
    key = (n_rows, seed, epoch)
    if key not in _PERMUTATIONS:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        _PERMUTATIONS[key] = torch.randperm(n_rows, generator=generator)
    return _PERMUTATIONS[key]


def total_steps(spec: RunSpec, method, n_rows: int) -> int:
    """RL: spec.steps. SFT: enough batches of prompts_per_step traces for sft_epochs epochs."""
    if method.rollouts:
        return spec.steps
    return math.ceil(spec.sft_epochs * n_rows / spec.prompts_per_step)


def linear_warmup(warmup_steps: int):
    """LR multiplier after `done` scheduler steps: (done + 1) / warmup_steps during warm-up, then 1."""

    def factor(done: int) -> float:
        return 1.0 if warmup_steps <= 0 else min(1.0, (done + 1) / warmup_steps)

    return factor


# ---------------------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, spec: RunSpec, *, progress: bool = True):
        from tgpo.methods import get_method
        from tgpo.numerics import pin_torch
        from tgpo.verifiers import get_verifier

        self.spec = spec
        self.method = get_method(spec.method)
        spec.check_against_method(self.method)
        self.hparams = spec.hparams  # complete: every value the run uses (RunSpec.complete_hparams)
        self.progress = progress
        pin_torch(spec.threads)
        quiet_transformers()
        self.output_dir = Path(spec.output_dir)
        # a folder of other settings is moved aside (and said so): never resumed, never mixed into metrics
        claim_run_dir(RunLayout(self.output_dir), spec.run_hash, {"experiment": spec.experiment, "seed": spec.seed})

        self.prompt_table = (
            read_table(spec.traces_data, ("prompt_id", "prompt", "answer", "response"), "teacher traces")
            if self.method.uses_teacher_traces
            else read_table(spec.train_data, ("prompt_id", "prompt", "answer"), "train prompts")
        )
        self.verifier = get_verifier(spec.verifier) if self.method.rollouts else None
        self.steps = total_steps(spec, self.method, len(self.prompt_table))

        resume_dir = ckpt.latest_checkpoint(self.output_dir)
        self.state = ckpt.load_trainer_state(resume_dir, spec.run_hash) if resume_dir is not None else None
        self.models = load_models(spec, self.method, resume_dir)
        student, tokenizer = self.models.student, self.models.tokenizer
        self.eos_ids = eos_token_ids(student, tokenizer)
        self.pad_id = pad_token_id(tokenizer, self.eos_ids)
        self.vocab_limit = student_vocab_limit(student, tokenizer)
        self.prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in self.prompt_table["prompt"]]
        self.trace_ids = (
            [self.encode_response(r) for r in self.prompt_table["response"]]
            if self.method.uses_teacher_traces
            else None
        )

        self.parameters = [p for p in student.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=spec.lr, weight_decay=spec.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, linear_warmup(spec.warmup_steps))
        self.rm_optimizer = None
        if self.models.reward_model is not None:
            rm_lr = float(self.hparams["prime_rm_lr"])
            self.rm_optimizer = torch.optim.AdamW(
                self.models.reward_model.parameters(), lr=rm_lr, weight_decay=spec.weight_decay
            )
        self.start_step = 0
        self.previous_wall_s = 0.0
        if self.state is not None:
            self.optimizer.load_state_dict(self.state.optimizer)
            self.scheduler.load_state_dict(self.state.scheduler)
            if self.rm_optimizer is not None:
                self.rm_optimizer.load_state_dict(self.state.reward_model_optimizer)
            ckpt.set_rng_state(self.state.rng)
            self.start_step = self.state.step
            self.previous_wall_s = self.state.wall_s
        self.metrics = MetricsLog(self.output_dir, keep_lines=self.state.metrics_lines if self.state else 0)
        self.last_checkpoint = resume_dir

    # ------------------------------------------------------------------ helpers
    def encode_response(self, text: str) -> list[int]:
        """Trace tokens + EOS, cut to max_new_tokens (as a rollout would be)."""
        ids = self.models.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.eos_ids[0]]
        return ids[: self.spec.max_new_tokens]

    def fail(self, step: int, term: str, value: Any) -> None:
        where = str(self.last_checkpoint) if self.last_checkpoint is not None else "none written yet"
        raise TrainingDiverged(
            f"experiment {self.spec.experiment!r} (method {self.method.name!r}, seed {self.spec.seed}) step {step}: "
            f"non-finite {term} = {value}; stopping. Last good checkpoint: {where}"
        )

    def micro_slices(self, start: int, stop: int):
        for first in range(start, stop, self.spec.micro_batch_size):
            yield slice(first, min(first + self.spec.micro_batch_size, stop))

    def log_probs(self, model, batch: RolloutBatch) -> torch.Tensor:
        """log pi(response token) [N, T] under `model`, in inference mode, one pass per micro-batch."""
        from tgpo.objectives.token_log_probs import gather_token_log_probs

        parts = []
        with torch.inference_mode():
            for rows in self.micro_slices(0, len(batch)):
                part = batch.rows(rows)
                logits = response_logits(model, part, self.spec.temperature)
                parts.append(gather_token_log_probs(logits, {"response": part.response_ids})["response"])
        return torch.cat(parts).clone()

    # ------------------------------------------------------------------ one step's data
    def rollouts_for(self, rows: list[int], step: int) -> tuple[list[Rollout], torch.Tensor]:
        """G rollouts per prompt (prompt-major) and off_policy_mask [N] (LUFFY's trace rows)."""
        spec = self.spec
        prompts = [self.prompt_table["prompt"][row] for row in rows]
        rollouts = sample(
            self.models.student,
            self.models.tokenizer,
            prompts,
            spec.group_size,
            temperature=spec.temperature,
            max_new_tokens=spec.max_new_tokens,
            top_p=spec.top_p,
            seed=spec.seed * 1_000_003 + step,
        )
        off_policy_mask = torch.zeros(len(rollouts))
        if self.method.policy_loss == "off_policy_mix":
            per_group = int(self.hparams["off_policy_per_group"])
            for index, rollout in enumerate(rollouts):
                if rollout.sample_index >= spec.group_size - per_group:
                    trace = self.trace_ids[rows[rollout.prompt_index]]
                    rollouts[index] = Rollout(
                        prompt_index=rollout.prompt_index,
                        sample_index=rollout.sample_index,
                        prompt_ids=rollout.prompt_ids,
                        response_ids=list(trace),
                        response_text=self.models.tokenizer.decode(trace, skip_special_tokens=True),
                        finish_reason="stop" if trace[-1] in self.eos_ids else "length",
                    )
                    off_policy_mask[index] = 1.0
        return rollouts, off_policy_mask

    def trace_rollouts(self, rows: list[int]) -> list[Rollout]:
        """SFT: one 'rollout' per row, the teacher trace."""
        return [
            Rollout(
                prompt_index=i,
                sample_index=0,
                prompt_ids=self.prompt_ids[row],
                response_ids=list(self.trace_ids[row]),
                response_text=self.prompt_table["response"][row],
                finish_reason="stop" if self.trace_ids[row][-1] in self.eos_ids else "length",
            )
            for i, row in enumerate(rows)
        ]

    # ------------------------------------------------------------------ PRIME
    def accuracy_filtered(self, rollouts: list[Rollout], scores: torch.Tensor, off_policy_mask: torch.Tensor):
        """The first prompts_per_step groups whose accuracy is in [prime_accuracy_low, prime_accuracy_high]."""
        from tgpo.objectives.implicit_reward import accuracy_filter

        group_index = torch.tensor([r.prompt_index for r in rollouts], dtype=torch.long)
        keep = accuracy_filter(
            scores, group_index, float(self.hparams["prime_accuracy_low"]), float(self.hparams["prime_accuracy_high"])
        )
        kept_groups = sorted({int(g) for g in group_index[keep]})[: self.spec.prompts_per_step]
        keep = keep & torch.isin(group_index, torch.tensor(kept_groups, dtype=torch.long))
        indices = torch.nonzero(keep).squeeze(-1).tolist()
        return [rollouts[i] for i in indices], scores[keep], off_policy_mask[keep]

    def prime_rewards(self, batch: RolloutBatch, scores: torch.Tensor, ref_log_probs: torch.Tensor, step: int):
        """Implicit process rewards [N, T] of the reward model (before its update), then one RM update."""
        from tgpo.objectives.implicit_reward import implicit_process_rewards, reward_model_loss
        from tgpo.objectives.token_log_probs import gather_token_log_probs

        beta = float(self.hparams["prime_beta"])
        reward_model = self.models.reward_model
        self.rm_optimizer.zero_grad(set_to_none=True)
        rewards, losses = [], []
        for rows in self.micro_slices(0, len(batch)):
            part = batch.rows(rows)
            logits = response_logits(reward_model, part, self.spec.temperature)
            rm_log_probs = gather_token_log_probs(logits, {"response": part.response_ids})["response"]
            rewards.append(implicit_process_rewards(rm_log_probs, ref_log_probs[rows], beta, part.response_mask))
            loss = reward_model_loss(rm_log_probs, ref_log_probs[rows], part.response_mask, scores[rows], beta)
            loss = loss * (len(part) / len(batch))
            if not torch.isfinite(loss):
                self.fail(step, "prime/reward_model_loss", float(loss))
            loss.backward()
            losses.append(float(loss.detach()))
        grad_norm = torch.nn.utils.clip_grad_norm_(reward_model.parameters(), self.spec.grad_clip)
        if not torch.isfinite(grad_norm):
            self.fail(step, "prime/reward_model_grad_norm", float(grad_norm))
        self.rm_optimizer.step()
        metrics = {"prime/reward_model_loss": sum(losses), "prime/reward_model_grad_norm": float(grad_norm)}
        return torch.cat(rewards).detach(), metrics

    # ------------------------------------------------------------------ the update
    def update(
        self,
        batch: RolloutBatch,
        scores,
        old_log_probs,
        advantages,
        signals: TeacherSignals,
        ref_log_probs,
        off_policy_mask,
        step: int,
    ) -> dict[str, float]:
        from tgpo.objectives import compose as objective

        spec = self.spec
        mini_size = len(batch) // spec.updates_per_step if self.method.rollouts else len(batch)
        updates = spec.updates_per_step if self.method.rollouts else 1
        mini_batch_metrics, grad_norms = [], []
        for update in range(updates):
            micro_metrics = []
            start, stop = update * mini_size, (update + 1) * mini_size if update < updates - 1 else len(batch)
            total_tokens = float(batch.response_mask[start:stop].sum())
            total_sequences = stop - start
            self.optimizer.zero_grad(set_to_none=True)
            for rows in self.micro_slices(start, stop):
                part = batch.rows(rows)
                inputs = objective.LossInputs(
                    logits=response_logits(self.models.student, part, spec.temperature),
                    response_ids=part.response_ids,
                    response_mask=part.response_mask,
                    old_log_probs=old_log_probs[rows],
                    advantages=advantages[rows],
                    teacher_token_ids=None if signals.teacher_token_ids is None else signals.teacher_token_ids[rows],
                    teacher_valid_mask=None if signals.teacher_valid_mask is None else signals.teacher_valid_mask[rows],
                    teacher_log_probs=None if signals.teacher_log_probs is None else signals.teacher_log_probs[rows],
                    ref_log_probs=None if ref_log_probs is None else ref_log_probs[rows],
                    off_policy_mask=None if off_policy_mask is None else off_policy_mask[rows],
                    sequence_scores=scores[rows],
                )
                # compute_loss takes the 0-based step (w_t of Eq. 6 uses t = 0 on the first step)
                loss, metrics = objective.compute_loss(
                    self.method,
                    inputs,
                    self.hparams,
                    step - 1,
                    total_tokens=total_tokens,
                    total_sequences=total_sequences,
                )
                if not torch.isfinite(loss):
                    bad = non_finite_keys(metrics)
                    self.fail(
                        step, f"loss (terms: {', '.join(bad) if bad else 'the total loss'})", float(loss.detach())
                    )
                loss.backward()
                micro_metrics.append(metrics)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, spec.grad_clip)
            if not torch.isfinite(grad_norm):
                self.fail(step, "actor/grad_norm", float(grad_norm))
            grad_norms.append(float(grad_norm))
            self.optimizer.step()
            mini_batch_metrics.append(combine_micro_batch_metrics(micro_metrics))
        self.scheduler.step()
        out = mean_metrics(mini_batch_metrics)
        out["actor/grad_norm"] = sum(grad_norms) / len(grad_norms)
        return out

    # ------------------------------------------------------------------ one step
    def run_step(self, step: int) -> dict[str, float]:
        from tgpo.objectives import compose as objective

        spec, method = self.spec, self.method
        step_start = time.perf_counter()
        filtered = "prime_accuracy_low" in self.hparams  # PRIME: oversample, keep groups of accuracy in bounds
        oversample = int(self.hparams["prime_oversample"]) if filtered else 1
        rows = prompt_rows_for_step(len(self.prompt_table), spec.prompts_per_step * oversample, step, spec.seed)
        record: dict[str, float] = {"step": step}

        off_policy_mask = None
        if method.rollouts:
            rollouts, off_policy_mask = self.rollouts_for(rows, step)
            answers = [str(self.prompt_table["answer"][rows[r.prompt_index]]) for r in rollouts]
            scores = torch.tensor([float(self.verifier(r.response_text, a)) for r, a in zip(rollouts, answers)])
            on_policy = off_policy_mask == 0
            record["critic/score/mean"] = float(scores[on_policy].mean())
            if filtered:
                rollouts, scores, off_policy_mask = self.accuracy_filtered(rollouts, scores, off_policy_mask)
                on_policy = off_policy_mask == 0
                record["prime/kept_groups"] = float(len({r.prompt_index for r in rollouts}))
                if not rollouts:  # no prompt of this step in the accuracy band: nothing to train on
                    record["timing_s/step"] = time.perf_counter() - step_start
                    return record
            if method.policy_loss != "off_policy_mix":
                off_policy_mask = None
        else:
            rollouts = self.trace_rollouts(rows)
            scores = torch.zeros(len(rollouts))
            on_policy = torch.ones(len(rollouts), dtype=torch.bool)
        lengths = torch.tensor([float(len(r.response_ids)) for r in rollouts])
        record["response_length/mean"] = float(lengths[on_policy].mean())
        record["response_length/clip_ratio"] = float(
            sum(r.finish_reason == "length" for r, keep in zip(rollouts, on_policy) if keep) / int(on_policy.sum())
        )
        batch = build_batch([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts], self.pad_id)
        group_index = torch.tensor([r.prompt_index for r in rollouts], dtype=torch.long)
        time_gen = time.perf_counter()
        record["timing_s/gen"] = time_gen - step_start

        idle = self.models.teacher is not None and teacher_idle(
            method.teacher_signal, method.guidance, self.hparams, step - 1
        )
        if (
            idle
        ):  # the argmax's weight is 0 from this step on: no teacher forward (tgpo.objectives.annealing.teacher_idle)
            signals = idle_teacher_signals(batch)
        elif self.models.teacher is not None:
            signals = teacher_signals(self.models.teacher, batch, method.teacher_signal, self.vocab_limit)
        else:
            signals = TeacherSignals(None, None, None, 0.0)
        if method.teacher_signal == "argmax":
            record["tgpo/teacher_skipped"] = float(idle)
        time_teacher = time.perf_counter()
        record["timing_s/teacher"] = time_teacher - time_gen

        old_log_probs = self.log_probs(self.models.student, batch)
        ref_log_probs = self.log_probs(self.models.reference, batch) if self.models.reference is not None else None
        implicit_rewards = None
        if self.models.reward_model is not None:
            implicit_rewards, prime_metrics = self.prime_rewards(batch, scores, ref_log_probs, step)
            record.update(prime_metrics)
        advantages = objective.compute_advantages(
            method,
            self.hparams,
            scores,
            group_index,
            batch.response_mask,
            old_log_probs=old_log_probs,
            teacher_log_probs=signals.teacher_log_probs,
            implicit_rewards=implicit_rewards,
        )
        if not torch.isfinite(advantages).all():
            self.fail(step, "advantages", "nan/inf")
        record["actor/lr"] = self.optimizer.param_groups[0]["lr"]  # the lr this step's updates use
        record.update(
            self.update(batch, scores, old_log_probs, advantages, signals, ref_log_probs, off_policy_mask, step)
        )
        if idle:  # the guidance NLL and OOV share of placeholder ids measure nothing: not logged
            record.pop("tgpo/guidance_loss", None)
            record.pop("tgpo/teacher_oov_frac", None)
        elif method.teacher_signal == "argmax":  # over the whole batch (compute_loss reports micro-batch means)
            record["tgpo/teacher_oov_frac"] = signals.oov_frac
        time_end = time.perf_counter()
        record["timing_s/update"] = time_end - time_teacher
        record["timing_s/step"] = time_end - step_start
        return record

    # ------------------------------------------------------------------ the loop
    def train(self, stop_after_step: int | None = None) -> TrainResult:
        from tqdm import tqdm

        run_start = time.perf_counter()
        spec = self.spec
        bar = tqdm(
            total=self.steps,
            initial=self.start_step,
            desc=spec.experiment,
            disable=not self.progress,
            dynamic_ncols=True,
            leave=False,
        )
        step = self.start_step
        from tgpo.engine.loggers import Trackers

        trackers = Trackers(spec.loggers, "tgpo", f"{spec.experiment}-seed{spec.seed}", self.output_dir)
        try:
            for step in range(self.start_step + 1, self.steps + 1):
                record = self.run_step(step)
                bad = non_finite_keys({k: float(v) for k, v in record.items()})
                if bad:
                    self.fail(step, ", ".join(bad), [record[k] for k in bad])
                self.metrics.append(record)
                trackers.log(record, step)
                bar.update(1)
                if self.progress:
                    tqdm.write(log_line(spec.experiment, step, self.steps, record))
                if step % spec.save_every == 0 and step < self.steps:
                    self.save(step, self.previous_wall_s + time.perf_counter() - run_start)
                if stop_after_step is not None and step >= stop_after_step and step < self.steps:
                    return TrainResult(self.output_dir, step, None, self.metrics.records())
        finally:
            bar.close()
            trackers.close()
        final = ckpt.save_final(self.output_dir, self.models.student, self.models.tokenizer)
        self.write_run_json(self.previous_wall_s + time.perf_counter() - run_start)
        return TrainResult(self.output_dir, self.steps, final, self.metrics.records())

    def save(self, step: int, wall_s: float) -> None:
        state = ckpt.TrainerState(
            step=step,
            metrics_lines=len(self.metrics),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            rng=ckpt.rng_state(),
            wall_s=wall_s,
            reward_model_optimizer=None if self.rm_optimizer is None else self.rm_optimizer.state_dict(),
            run_hash=self.spec.run_hash,
        )
        self.last_checkpoint = ckpt.save_checkpoint(
            self.output_dir, state, self.models.student, self.models.tokenizer, self.models.reward_model
        )

    def settings_used(self) -> dict[str, dict]:
        """name -> {value, source} of every setting this run trained with (the optimizer's base lr)."""
        spec = self.spec
        values = {name: getattr(spec, name) for name in RUN_SPEC_SETTINGS}
        values.update(self.hparams)
        values["lr"] = self.optimizer.param_groups[0]["initial_lr"]  # LambdaLR's base lr: the one trained at
        return {
            name: {"value": value, "source": spec.sources.get(name, "run spec")}
            for name, value in sorted(values.items())
        }

    def write_run_json(self, wall_s: float) -> None:
        from tgpo.results.run_record import write_run_record

        write_run_record(
            RunLayout(self.output_dir).run_json,
            engine="local",
            experiment=self.spec.experiment,
            seed=self.spec.seed,
            run_hash=self.spec.run_hash,
            method=self.method.name,
            wall_time_s=wall_s,
            steps=self.steps,
            settings=self.settings_used(),
            hparams=self.hparams,
            run_spec=self.spec.to_dict(),
        )


def completed_run(spec: RunSpec) -> dict | None:
    """run.json of a finished run with the same run hash and final checkpoint in place, else None."""
    run = RunLayout(Path(spec.output_dir))
    if not run.run_json.is_file() or not run.final_checkpoint.is_dir():
        return None
    info = json.loads(run.run_json.read_text())
    same = info.get("completed") and info.get("run_hash") == spec.run_hash and info.get("seed") == spec.seed
    return info if same else None


def train(spec: RunSpec, *, stop_after_step: int | None = None, progress: bool = True) -> TrainResult:
    """Train one run (resuming from its last checkpoint if there is one); see the module docstring.

    A run whose run.json says it completed (same run hash and seed) is not trained again; a run folder
    of other settings is moved aside first (tgpo.results.run_guard).
    """
    info = completed_run(spec)
    if info is not None:
        records = MetricsLog.read(Path(spec.output_dir))
        return TrainResult(
            Path(spec.output_dir), int(info["steps"]), ckpt.final_checkpoint_dir(spec.output_dir), records
        )
    return Trainer(spec, progress=progress).train(stop_after_step=stop_after_step)
