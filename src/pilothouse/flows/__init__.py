"""Durable workflows: graphs of typed steps over a typed state, checkpointed, resumable, with approvals."""

from pilothouse.flows.context import StepContext
from pilothouse.flows.engine import Engine
from pilothouse.flows.errors import (
    ApprovalRejected,
    BudgetExceeded,
    FlowChanged,
    FlowDefinitionError,
    FlowError,
    FlowInputError,
    LoopBoundExceeded,
    MapItemFailed,
    StepTimeout,
)
from pilothouse.flows.graph import Flow
from pilothouse.flows.memory_store import MemoryCheckpointStore
from pilothouse.flows.policy import Retry
from pilothouse.flows.protocol import (
    Approval,
    Checkpoint,
    CheckpointStore,
    LeaseLost,
    NewRun,
    RunRecord,
    SeqConflict,
)
from pilothouse.flows.replay import ReplayError, replay
from pilothouse.flows.steps.base import Step, StepResult
from pilothouse.flows.tool_registry import flow_tool

__all__ = [
    "Approval",
    "ApprovalRejected",
    "BudgetExceeded",
    "Checkpoint",
    "CheckpointStore",
    "Engine",
    "Flow",
    "FlowChanged",
    "FlowDefinitionError",
    "FlowError",
    "FlowInputError",
    "LeaseLost",
    "LoopBoundExceeded",
    "MapItemFailed",
    "MemoryCheckpointStore",
    "NewRun",
    "ReplayError",
    "Retry",
    "RunRecord",
    "SeqConflict",
    "Step",
    "StepContext",
    "StepResult",
    "StepTimeout",
    "flow_tool",
    "replay",
]
