"""Tool permissions: a registry of tools, allow-lists with argument rules, and the decision on a tool call.

The gateway refuses a model's tool call that breaks them (gateway/stages/tool_gate.py); a workflow engine
asks `check_tool_call` before it runs a tool. See docs/tools.md.
"""

from pilothouse.tools.decisions import Decision, decide
from pilothouse.tools.permissions import Caller
from pilothouse.tools.rules import ToolRules, check_tool_call

__all__ = ["Caller", "Decision", "ToolRules", "check_tool_call", "decide"]
