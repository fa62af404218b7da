"""Routing: several deployments per model, retries with backoff, fallback chains and circuit breaking.

See docs/cost-control.md (Routing) for the rules; `Router` is the gateway's route stage.
"""

from pilothouse.gateway.routing.router import Router, deployment_labels

__all__ = ["Router", "deployment_labels"]
