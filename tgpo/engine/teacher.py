"""Teacher signals on the student's own trajectories, from ONE teacher forward pass.

- argmax (TGPO family, Eq. 3): y_t^T = argmax_v pi_T(v | x, y_<t) at every response position of the
  student's sequence -> `teacher_token_ids [N, T]`.
- sampled_log_prob (RKL family, Section 2.1): log pi_T(y_t | x, y_<t) of the student's sampled token
  -> `teacher_log_probs [N, T]`.

Vocabularies are aligned by id (the paper's teacher and student share a tokenizer family). A teacher
argmax id the student cannot represent (>= the student's vocabulary size, or not in its tokenizer) is
masked out: `teacher_valid_mask = 0` there, and the masked fraction of response tokens is reported as
`tgpo/teacher_oov_frac`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tgpo.engine.batch import RolloutBatch, response_logits

SIGNALS = ("none", "argmax", "sampled_log_prob")


@dataclass
class TeacherSignals:
    teacher_token_ids: torch.Tensor | None  # [N, T] long; 0 where teacher_valid_mask is 0
    teacher_valid_mask: torch.Tensor | None  # [N, T] float: 1 where the argmax id is in the student vocabulary
    teacher_log_probs: torch.Tensor | None  # [N, T] float
    oov_frac: float  # masked argmax ids / response tokens


def student_vocab_limit(student_model, student_tokenizer) -> int:
    """Ids below this are real student tokens: min(student logits width, tokenizer size)."""
    return min(int(student_model.get_output_embeddings().weight.shape[0]), len(student_tokenizer))


def argmax_signals(teacher_logits: torch.Tensor, response_mask: torch.Tensor, vocab_limit: int):
    """(teacher_token_ids [N, T], teacher_valid_mask [N, T], oov_frac) from teacher logits [N, T, V_T]."""
    argmax_ids = teacher_logits.argmax(dim=-1)
    in_vocab = argmax_ids < vocab_limit
    valid_mask = in_vocab.to(torch.float32) * response_mask
    n_tokens = float(response_mask.sum())
    oov_frac = float(((~in_vocab).to(torch.float32) * response_mask).sum()) / n_tokens if n_tokens else 0.0
    return torch.where(in_vocab, argmax_ids, torch.zeros_like(argmax_ids)), valid_mask, oov_frac


def sampled_log_probs(teacher_logits: torch.Tensor, response_ids: torch.Tensor) -> torch.Tensor:
    """log pi_T(response token) [N, T]; every sampled id must exist in the teacher's vocabulary."""
    from tgpo.objectives.token_log_probs import gather_token_log_probs

    teacher_vocab = teacher_logits.shape[-1]
    if int(response_ids.max()) >= teacher_vocab:
        raise ValueError(
            f"teacher_log_probs: the student sampled token id {int(response_ids.max())}, outside the teacher's "
            f"vocabulary of {teacher_vocab} ids; vocabularies must be aligned by id"
        )
    return gather_token_log_probs(teacher_logits, {"sampled": response_ids})["sampled"]


def teacher_signals(teacher_model, batch: RolloutBatch, signal: str, vocab_limit: int) -> TeacherSignals:
    """One teacher forward over the batch's sequences; only the signal the method names is computed."""
    if signal not in SIGNALS:
        raise ValueError(f"teacher_signals: unknown teacher_signal {signal!r}; expected one of {SIGNALS}")
    if signal == "none":
        return TeacherSignals(None, None, None, 0.0)
    with torch.inference_mode():
        teacher_logits = response_logits(teacher_model, batch)
        if signal == "argmax":
            token_ids, valid_mask, oov_frac = argmax_signals(teacher_logits, batch.response_mask, vocab_limit)
            log_probs = None
        else:
            token_ids, valid_mask, oov_frac = None, None, 0.0
            log_probs = sampled_log_probs(teacher_logits, batch.response_ids)
    # inference tensors cannot enter autograd graphs (e.g. as gather indices): return ordinary copies
    return TeacherSignals(*(None if t is None else t.clone() for t in (token_ids, valid_mask, log_probs)), oov_frac)


def idle_teacher_signals(batch: RolloutBatch) -> TeacherSignals:
    """Placeholder argmax signals for a step whose guidance weight is 0 (tgpo.objectives.annealing.teacher_idle): id 0
    everywhere, all valid, so the loss terms they enter are multiplied by 0; no teacher forward runs."""
    shape = batch.response_ids.shape
    return TeacherSignals(torch.zeros(shape, dtype=torch.long), torch.ones(shape, dtype=torch.float32), None, 0.0)
