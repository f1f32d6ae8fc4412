"""Checkpoints: a training job's whole state, saved beside its output, so that a killed or preempted job resumes
where it stopped and ends with exactly the numbers of an uninterrupted run (on the same device).

The protocol is in docs/architecture.md ("Checkpoints"). In short: the job saves, atomically, every `minutes` of
wall time and/or every `tasks` tasks, and at the next step boundary after a SIGTERM (then it exits non-zero, so
that Snakemake or Slurm retries it); a job resumes from a checkpoint written for the same spec by the same library
code, and removes it once its results are written.
"""
from __future__ import annotations

import bisect
import functools
import hashlib
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import torch

from plasticity.config import canonical_json
from plasticity.io import remove_temporaries, write_atomically

FORMAT_VERSION = 1
# Steps between two looks at the clock. A look costs about a microsecond; a step of the smallest nets a few.
CHECK_EVERY_STEPS = 256


class Terminated(Exception):
    """A SIGTERM arrived: the job saved a checkpoint and stops, so that the retry resumes from it."""

    exit_code = 128 + signal.SIGTERM


@functools.cache
def code_fingerprint() -> str:
    """Hash of the library's source files: a checkpoint is resumed only by the code that wrote it, so that an
    edit between a kill and the retry never mixes two versions of the code in one result."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _matching_spec(spec: dict) -> str:
    """The part of a job spec a checkpoint must match: everything but the device, so that a job resumes on another
    device (CPU and GPU agree within float tolerance, see docs/architecture.md)."""
    return canonical_json({key: value for key, value in spec.items() if key != "device"})


def _log(message: str) -> None:
    print(f"checkpoint: {message}", file=sys.stderr, flush=True)


def _first_after(boundaries: list[int], step: int) -> float:
    """The first of the sorted `boundaries` after `step` (inf when none is left)."""
    index = bisect.bisect_right(boundaries, step)
    return boundaries[index] if index < len(boundaries) else math.inf


class Checkpoints:
    """Where and when one training job saves its state, and the checkpoint it resumes from.

    path: the checkpoint file (None: never save or resume). minutes: save when this much wall time has passed since
    the start or the last save (looked at every CHECK_EVERY_STEPS steps, so 0 saves at every look; None: not by
    time). tasks: also save at every `tasks`-th task boundary (benchmarks with tasks; None: not by task).
    The training loop calls `at_step` whenever its step reaches `next_check`.
    """

    def __init__(self, path: str | Path | None = None, minutes: float | None = 10.0, tasks: int | None = None):
        if minutes is not None and minutes < 0:
            raise ValueError(f"checkpoint minutes must be >= 0 or None, not {minutes}")
        if tasks is not None and tasks < 1:
            raise ValueError(f"checkpoint tasks must be >= 1 or None, not {tasks}")
        self.path = None if path is None else Path(path)
        self.minutes, self.tasks = minutes, tasks
        self.next_check: float = math.inf
        self.resumed_at: list[int] = []       # examples seen at each resume of this job, for its provenance
        self._stop_requested = False
        self._saved_at = time.monotonic()
        self._next_task_step: float = math.inf
        self._task_boundary_after: Callable[[int], float] = lambda step: math.inf   # the next save by tasks
        self._spec: str | None = None

    def resume(self, spec: dict) -> dict | None:
        """The checkpoint an earlier attempt at job `spec` saved, or None (no checkpoint, or one that does not match:
        written for another spec, by other code, or unreadable; the next save replaces it). Call it first: later
        saves are written for this spec."""
        self._spec = _matching_spec(spec)
        if self.path is None or not self.path.exists():
            return None
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file is ignored the same way
            _log(f"WARNING: ignoring unreadable {self.path} ({type(error).__name__}: {error}); starting afresh")
            return None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT_VERSION:
            _log(f"WARNING: ignoring {self.path}: not a checkpoint of format {FORMAT_VERSION}; starting afresh")
            return None
        if saved["spec"] != self._spec:
            theirs, ours = json.loads(saved["spec"]), json.loads(self._spec)
            differing = sorted(key for key in theirs.keys() | ours.keys() if theirs.get(key) != ours.get(key))
            _log(f"WARNING: ignoring {self.path}: written for a job spec that differs in {', '.join(differing)}; "
                 "starting afresh")
            return None
        if saved["code"] != code_fingerprint():
            _log(f"WARNING: ignoring {self.path}: written by other library code; starting afresh")
            return None
        self.resumed_at = saved["resumed_at"] + [saved["examples"]]
        _log(f"resuming from {self.path} at {saved['examples']} examples (step {saved['step']})")
        return saved

    def start(self, step: int, steps_per_task: int | None, task_starts: list[int] | None = None) -> None:
        """Schedule the first check after `step`, where training starts (0, or the step resumed at). Tasks are
        `steps_per_task` steps each, or start at the steps `task_starts` (tasks of different lengths)."""
        if self.path is None:
            return
        self._saved_at = time.monotonic()
        if self.tasks is not None and task_starts:
            boundaries = task_starts[self.tasks::self.tasks]
            self._task_boundary_after = functools.partial(_first_after, boundaries)
        elif self.tasks is not None and steps_per_task:
            period = self.tasks * steps_per_task
            self._task_boundary_after = lambda at: (at // period + 1) * period
        self._next_task_step = self._task_boundary_after(step)
        self._schedule(step)

    def _schedule(self, step: int) -> None:
        timed = step + CHECK_EVERY_STEPS if self.minutes is not None else math.inf
        self.next_check = min(timed, self._next_task_step)

    def at_step(self, step: int, examples: int, state: Callable[[], dict]) -> None:
        """At the boundary before `step`: save `state()` if due; after a SIGTERM, save and raise Terminated."""
        task_due = step >= self._next_task_step
        if task_due:
            self._next_task_step = self._task_boundary_after(step)
        time_due = self.minutes is not None and time.monotonic() - self._saved_at >= 60 * self.minutes
        # Schedule before reading the stop flag: a SIGTERM from here on sets next_check to 0 again.
        self._schedule(step)
        stopping = self._stop_requested
        if task_due or time_due or stopping:
            self.save(step, examples, state())
        if stopping:
            _log(f"stopping after SIGTERM at {examples} examples; a rerun resumes from {self.path}")
            raise Terminated(f"stopped by SIGTERM at {examples} examples; state saved to {self.path}")

    def save(self, step: int, examples: int, state: dict) -> None:
        """Write `state` (taken at the boundary before `step`) atomically: a kill mid-save leaves the last one."""
        payload = {"format": FORMAT_VERSION, "spec": self._spec, "code": code_fingerprint(),
                   "step": step, "examples": examples, "resumed_at": self.resumed_at, "state": state}
        write_atomically(self.path, lambda temporary: torch.save(payload, temporary))
        self._saved_at = time.monotonic()
        _log(f"saved at {examples} examples")

    def remove(self) -> None:
        """Delete the checkpoint (once the job's results are written) and any temporary file of a killed save."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            remove_temporaries(self.path)

    @contextmanager
    def stopping_on_sigterm(self):
        """While training: a SIGTERM (Slurm's warning before a time limit or preemption) makes the next step
        boundary save and stop, instead of killing the job mid-step."""
        if self.path is None:
            yield
            return

        def request_stop(signum, frame):
            self._stop_requested = True
            self.next_check = 0

        previous = signal.signal(signal.SIGTERM, request_stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
