"""The dashboard's pages, one module per section (ui/nav.py lists the sections). Each module has a `router`."""

from __future__ import annotations

from fastapi import APIRouter

from pilothouse.ui.pages import evals, flows, governance, monitors, overview, prompts, rag, traces

ROUTERS: tuple[APIRouter, ...] = (
    overview.router,
    traces.router,
    prompts.router,
    evals.router,
    rag.router,
    monitors.router,
    flows.router,
    governance.router,
)
