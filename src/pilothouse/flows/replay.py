"""Replaying a finished run from one of its checkpoints, with changed steps, as a new run (the original stays
as it is): for debugging a decision ("what if the summariser had said this?").

    new = await replay(engine, flow, run_id, from_seq=3, changes={"summarise": better_summarise})

The new run starts from the checkpoint's state and goes on from the step after it (a waiting, approved, rejected
or failed checkpoint: from that step again); `from_seq=0` starts over from the original input. It records
`replay_of`. Because the changed graph exists only in this process, the replay is executed here (`execute`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pilothouse.flows.engine import Engine
from pilothouse.flows.graph import Flow
from pilothouse.flows.protocol import TERMINAL, RunRecord
from pilothouse.flows.steps.base import Step


class ReplayError(ValueError):
    """The run or checkpoint cannot be replayed (unknown, unfinished, pruned, an item of a map)."""


async def replay(
    engine: Engine,
    flow: Flow,
    run_id: str,
    *,
    from_seq: int,
    changes: Mapping[str, Step | Callable[[Any, Any], Any]] | None = None,
    execute: bool = True,
    created_by: str | None = None,
) -> RunRecord:
    original = engine.store.get_run(run_id)
    if original is None:
        raise ReplayError(f"run {run_id} does not exist")
    if original.status not in TERMINAL:
        raise ReplayError(f"run {run_id} is {original.status}: only a finished run can be replayed")
    changed = flow.build()
    for name, step in (changes or {}).items():
        changed = changed.replace(name, step)
    if from_seq < 0:
        raise ReplayError("from_seq must be 0 (the start) or a checkpoint's seq")
    if from_seq == 0:
        state: dict[str, Any] = dict(original.input)
        next_steps: tuple[str, ...] | None = None
    else:
        found = [c for c in engine.store.checkpoints(run_id, after_seq=from_seq - 1) if c.seq == from_seq]
        if not found:
            raise ReplayError(f"run {run_id} has no checkpoint {from_seq} (it may have been pruned)")
        cp = found[0]
        if cp.item is not None:
            raise ReplayError(
                f"checkpoint {from_seq} is item {cp.item} of map {cp.step!r}: replay from the map's own checkpoint"
            )
        if cp.step not in changed.nodes:
            raise ReplayError(f"checkpoint {from_seq} is of step {cp.step!r}, which flow {flow.name!r} does not have")
        state = dict(cp.state_after)
        if cp.status == "succeeded" or cp.status == "compensated":
            model = changed.state.model_validate(state)
            following, _ = changed.next_steps(cp.step, model)
            next_steps = tuple(following)
        else:
            next_steps = (cp.step,)
        if not next_steps:
            raise ReplayError(f"checkpoint {from_seq} ({cp.step}) is the run's last step: nothing to replay after it")
    new = engine.start(
        changed,
        original.input,
        project_id=original.project_id,
        ref=original.flow,
        budget=original.budget,
        created_by=created_by or original.created_by,
        replay_of=original.id,
        state=state,
        next_steps=next_steps,
    )
    if not execute:
        return new
    return await engine.run(changed, new.id)
