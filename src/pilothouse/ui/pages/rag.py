"""Dashboard section 'rag': collections, their documents with freshness and access lists, a query playground.

- `/rag`: the project's collections (model, documents, chunks, stale count), and for developers a form that
  creates one (`POST /api/rag/collections`).
- `/rag/{collection}`: the collection's documents, paged, with their freshness (indexed, modified, stale and
  why) and access lists; for developers forms that add records and delete the collection (the API's routes).
- `/rag/{collection}/query`: the query playground (ui/pages/rag_playground.py); a query is a read, so the form
  is a plain GET to the page, which runs it as the session's principal through the query route's steps.

Reading needs the viewer role, as the API's reads do; the forms that change things are shown to developers.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from pilothouse.rag.embedders import DEFAULT_MODEL
from pilothouse.rag.retrieve import MAX_CANDIDATES, MAX_K, MODES
from pilothouse.store.keys import role_at_least
from pilothouse.ui.context import UiDep, require_ui_role
from pilothouse.ui.pages.rag_playground import FIELDS, query_body, run_playground
from pilothouse.ui.pages.rag_views import PAGE_SIZE, collection_rows, document_page, find_collection
from pilothouse.ui.render import page

router = APIRouter(include_in_schema=False)


@router.get("/rag", response_class=HTMLResponse)
async def collections(ctx: UiDep) -> HTMLResponse:
    require_ui_role(ctx, "viewer")
    rows = await asyncio.to_thread(collection_rows, ctx.state.store, ctx.principal)
    return page(
        ctx,
        "rag/collections.html",
        title="RAG collections",
        rows=rows,
        can_write=role_at_least(ctx.principal.role, "developer"),
        default_model=DEFAULT_MODEL,
    )


@router.get("/rag/{collection}", response_class=HTMLResponse)
async def documents(
    ctx: UiDep,
    collection: str,
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    prefix: Annotated[str | None, Query(max_length=1000)] = None,
    status: Annotated[Literal["active", "quarantined"] | None, Query()] = None,
    stale: Annotated[Literal["all", "stale", "fresh"], Query()] = "all",
    files: Annotated[bool, Query(description="Also check source files on the server's disk.")] = False,
) -> HTMLResponse:
    require_ui_role(ctx, "viewer")
    found = await asyncio.to_thread(
        document_page,
        ctx.state.store,
        ctx.principal,
        collection,
        page=page_no,
        prefix=prefix,
        status=status,
        stale=stale,
        check_files=files,
    )
    filters = {"prefix": prefix or "", "status": status or "", "stale": stale, "files": "1" if files else ""}
    kept = {k: v for k, v in filters.items() if v and not (k == "stale" and v == "all")}

    def page_url(number: int) -> str:
        return f"/rag/{collection}?" + urlencode({**kept, "page": number})

    return page(
        ctx,
        "rag/documents.html",
        title=f"Collection {found.collection.info.name}",
        found=found,
        filters=filters,
        page_size=PAGE_SIZE,
        next_url=page_url(found.page + 1) if found.page < found.pages else None,
        prev_url=page_url(found.page - 1) if found.page > 1 else None,
        can_write=role_at_least(ctx.principal.role, "developer"),
    )


@router.get("/rag/{collection}/query", response_class=HTMLResponse)
async def playground(ctx: UiDep, collection: str) -> HTMLResponse:
    require_ui_role(ctx, "viewer")
    summary = await asyncio.to_thread(find_collection, ctx.state.store, ctx.principal, collection)
    params = ctx.request.query_params
    form = {name: params.get(name, "") for name in (*FIELDS, "all")}
    body = query_body(form)
    result = None
    if body is not None:
        result = await run_playground(ctx.state, ctx.principal, summary.info.name, body)
    return page(
        ctx,
        "rag/query.html",
        title=f"Query {summary.info.name}",
        collection=summary,
        form=form,
        modes=MODES,
        max_k=MAX_K,
        max_candidates=MAX_CANDIDATES,
        result=result,
        may_assert=role_at_least(ctx.principal.role, "service"),
        may_see_all=role_at_least(ctx.principal.role, "admin"),
    )
