"""Agents in flows: the tool-calling loop (`loop`), a supervisor routing to worker agents (`supervisor`) and
hand-off between agents in one conversation (`handoff`); each agent has its own tools and permissions."""

from pilothouse.flows.agents.handoff import HandoffStep
from pilothouse.flows.agents.loop import Agent, AgentCaps, AgentLimitExceeded
from pilothouse.flows.agents.supervisor import SupervisorStep

__all__ = ["Agent", "AgentCaps", "AgentLimitExceeded", "HandoffStep", "SupervisorStep"]
