"""Resume integrity: a run folder only ever holds the training of one resolved experiment.

When a run starts (either engine), `claim_run_dir` compares the hash recorded in the folder's settings
marker (`runs/<experiment>/seed<k>/run_settings.json`, tgpo.results.layout) with the hash of the experiment
about to train (tgpo.config.resolve, `run_hash`). A folder of other settings, or one with content but no
marker, is moved aside to `seed<k>.stale-<old hash>-<time>/` (never deleted) and the reason is
logged; the run then starts fresh, so it never resumes a checkpoint of other settings and its
metrics.jsonl never mixes two settings. Then the marker is written. The local engine's checkpoints
carry the hash as well (tgpo.engine.checkpoint.TrainerState.run_hash) and are checked on load.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tgpo.results.io import write_json
from tgpo.results.layout import RunLayout


def recorded_hash(run: RunLayout) -> str | None:
    """The run_hash in the folder's settings marker; None when there is no (readable) marker."""
    try:
        recorded = json.loads(run.settings_marker.read_text()).get("run_hash")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, str) and recorded else None


def _log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def claim_run_dir(
    run: RunLayout,
    run_hash: str,
    description: Mapping[str, Any] | None = None,
    log: Callable[[str], None] = _log_to_stderr,
) -> Path | None:
    """Make `run.root` a folder of `run_hash`'s training; return where an old run was moved, else None.

    description: written into the marker beside the hash (e.g. the resolved experiment).
    """
    if not run_hash:
        raise ValueError(f"{run.root}: claim_run_dir needs the run's hash, got {run_hash!r}")
    moved = None
    if run.root.is_dir() and any(run.root.iterdir()):
        old = recorded_hash(run)
        if old != run_hash:
            moved = run.stale(old or "unrecorded")
            suffix = 1
            while moved.exists():
                moved = moved.with_name(f"{run.stale(old or 'unrecorded').name}-{suffix}")
                suffix += 1
            run.root.rename(moved)
            log(
                f"{run.root}: holds a run of other settings (recorded hash {old or 'none'}, this run {run_hash}); "
                f"moved it to {moved}; starting fresh"
            )
    run.root.mkdir(parents=True, exist_ok=True)
    if recorded_hash(run) != run_hash:
        write_json(run.settings_marker, {"run_hash": run_hash, **dict(description or {})})
    return moved
