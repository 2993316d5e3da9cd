"""run.json, what ran: written last, by either engine (tgpo.engine.trainer, tgpo.verl.run), through
`write_run_record`, which adds what every record holds: the git commit, the library versions, `completed`."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any

from tgpo.results.io import write_json


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def library_versions() -> dict[str, str]:
    import torch
    import transformers

    import tgpo

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tgpo": tgpo.__version__,
    }


def write_run_record(path: Path, *, engine: str, experiment: str, seed: int, run_hash: str, **fields: Any) -> None:
    """Write run.json at `path`: who ran (engine, experiment, seed, run hash), the commit and library
    versions, `fields` (settings, wall time, the engine's own facts), and `completed: true`."""
    record: dict[str, Any] = {
        "experiment": experiment,
        "seed": seed,
        "engine": engine,
        "run_hash": run_hash,
        "git_commit": git_commit(),
        "versions": library_versions(),
        **fields,
        "completed": True,
    }
    write_json(path, record)
