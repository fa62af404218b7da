"""Everything a running server holds, built at start-up and closed at shutdown."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pilothouse.audit.checkpoints import AuditSetup
from pilothouse.audit.signing import AuditKeyError
from pilothouse.config import ConfigError, Settings
from pilothouse.gateway.admission import Admission, build_admission
from pilothouse.gateway.cache import ResponseCache
from pilothouse.gateway.limits.ledger import Ledger
from pilothouse.gateway.model_calls import Gateway
from pilothouse.gateway.pipeline import Pipeline
from pilothouse.gateway.pricing import default_price_book
from pilothouse.gateway.providers.registry import ProviderPool
from pilothouse.guards.policy.runtime import PolicyEngine
from pilothouse.otel.export import OtlpExporter
from pilothouse.otel.receiver import OtlpReceiver
from pilothouse.otel.span_costs import SpanCosts
from pilothouse.prompts.registry.resolver import PromptResolver
from pilothouse.rag.querying import RagQueries
from pilothouse.server.auth import Authenticator
from pilothouse.server.bootstrap import Bootstrap, bootstrap
from pilothouse.store.engine import Store, open_store
from pilothouse.store.private_files import private_dir
from pilothouse.tools.rules import ToolRules
from pilothouse.tracing.sink import StoreSink, replay_spill

log = logging.getLogger("pilothouse.server")


@dataclass
class AppState:
    settings: Settings
    store: Store
    sink: StoreSink
    auth: Authenticator
    gateway: Gateway
    pool: ProviderPool
    boot: Bootstrap
    admission: Admission
    ledger: Ledger
    pipeline: Pipeline
    """The one entry point of model calls (the HTTP face and in-process callers), over the parts above."""
    otlp: OtlpReceiver
    """POST /v1/traces: OpenTelemetry traces in (otel/receiver.py)."""
    started_at: float = field(default_factory=time.time)
    models_ready: bool = False
    warm_error: str | None = None
    cache: ResponseCache | None = None  # None: caching is off (cache.enabled)
    tools: ToolRules | None = None
    """The projects' tool rules as the gateway checks them; the tools API drops a project's copy on a change."""
    audit: AuditSetup | None = None
    """The checkpoint signing key, file and trusted keys (audit/checkpoints.py); set by `build_state`."""
    exporter: OtlpExporter | None = None
    """Our traces out to an OTLP collector (otel.export_endpoint); None: no export."""


def build_state(settings: Settings) -> AppState:
    private_dir(settings.data_dir)  # 0700: traces, spills and the admin key live here
    store = open_store(settings.resolved_database_url())
    spill = settings.data_dir / "traces-unstored.jsonl"
    replayed = replay_spill(store, spill)
    if replayed:
        log.warning("replayed %d traces that an earlier run could not store", replayed)
    boot = bootstrap(store, settings.admin_key_path)
    try:
        audit = AuditSetup.open(
            settings.audit_key_path, settings.audit_checkpoint_log_path, settings.audit.trusted_public_keys
        )
    except AuditKeyError as exc:  # the operator's to fix: reported as one line
        store.dispose()
        raise ConfigError(str(exc)) from None
    pool = ProviderPool(settings)
    gateway = Gateway(settings, pool, default_price_book(), PromptResolver(store))
    admission = build_admission(settings, store, gateway.prices, gateway.catalog)
    ledger = admission.ledger = Ledger(settings, store, admission.store)
    sink = StoreSink(store, spill_path=spill, batch_max=settings.trace_batch_max)
    exporter = start_exporter(settings, sink)
    cache = ResponseCache.from_settings(settings, store)
    tools = ToolRules(store, settings.limits.definitions_ttl_s)
    guards = PolicyEngine(store, ttl_s=settings.limits.definitions_ttl_s, audit=admission.audit)
    return AppState(
        settings=settings,
        store=store,
        sink=sink,
        auth=Authenticator(store, settings.key_cache_ttl_s),
        gateway=gateway,
        pool=pool,
        boot=boot,
        admission=admission,
        ledger=ledger,
        pipeline=Pipeline(
            gateway,
            sink,
            admission=admission,
            cache=cache,
            tools=tools,
            guards=guards,
            rag=RagQueries(store, settings.data_dir),
        ),
        cache=cache,
        tools=tools,
        audit=audit,
        otlp=OtlpReceiver(
            store,
            SpanCosts(gateway.prices, gateway.catalog),
            capture_content=settings.capture_content,
            max_bytes=settings.max_body_bytes,
        ),
        exporter=exporter,
    )


def start_exporter(settings: Settings, sink: StoreSink) -> OtlpExporter | None:
    """The OTLP exporter fed by the trace sink, when `otel.export_endpoint` is set."""
    otel = settings.otel
    if otel.export_endpoint is None:
        return None
    exporter = OtlpExporter(
        otel.export_endpoint,
        headers=otel.export_headers,
        service_name=otel.service_name,
        batch_max=otel.batch_max,
        queue_max=otel.queue_max,
        retries=otel.retries,
        timeout_s=otel.timeout_s,
    )
    sink.add_listener(exporter.offer)
    return exporter


async def warm_models(state: AppState) -> None:
    """Load local models before declaring readiness, so the first request is not the slow one."""
    try:
        for entry in state.gateway.catalog.values():
            for deployment in entry.deployments:
                provider = state.pool.get(deployment)
                if state.settings.local.preload:
                    await provider.warm()
        if state.cache is not None:
            await state.cache.warm()  # the embedding model, when the semantic cache is on
        state.models_ready = True
    except Exception as exc:  # surfaced on /readyz rather than crashing the server
        state.warm_error = f"{type(exc).__name__}: {exc}"
        log.error("could not load models: %s", state.warm_error)


async def start_ledger(state: AppState) -> None:
    """After the admission stage started (Redis checked): settle what dead replicas left in flight and retry
    pending settles before serving, then keep doing it and reconciling in the background."""
    await state.ledger.start(lambda: state.admission.definitions.index.all_budgets())


async def close_state(state: AppState) -> None:
    if state.gateway.prompts is not None:
        state.gateway.prompts.close()
    await state.ledger.aclose()  # before the limit store closes: a last retry of pending settles
    if state.pipeline.services.guards is not None:
        await state.pipeline.services.guards.aclose()  # a policy reload in progress, before the store closes
    await state.admission.aclose()
    if state.cache is not None:
        await state.cache.aclose()
    await state.pool.aclose()
    state.sink.close()
    if state.exporter is not None:
        state.exporter.close()  # after the sink: its last batch is queued for export too
    state.store.dispose()
