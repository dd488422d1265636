"""OpenTelemetry: spans and metrics of a real payment with the in-memory exporter; nothing when off."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from amp_tools import telemetry
from amp_tools.approvals import CallbackApprover
from amp_tools.errors import PolicyViolation
from amp_tools.ledger import open_ledger
from amp_tools.policy import parse_policy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit


@pytest.fixture
def otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    # The suite disables the SDK process-wide (CrewAI's telemetry); these providers are ours, in memory.
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    telemetry.enable(tracer_provider=tracer, meter_provider=MeterProvider(metric_readers=[reader]))
    yield spans, reader
    telemetry.disable()


def _metrics(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    if value is None:
                        value = (point.count, point.sum)
                    out.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return out


async def test_a_payment_emits_its_spans_and_metrics_without_secrets(
        otel: tuple[InMemorySpanExporter, InMemoryMetricReader], tmp_path: Path) -> None:
    spans, reader = otel
    sandbox = Sandbox(SandboxConfig(seed=2))
    policy = parse_policy({"name": "otel", "currency": "USD", "total_budget": "30.00",
                           "approval": {"confirm_above": "10.00"}}, "otel")
    tk = AmpToolkit.for_sandbox(sandbox, policy, ledger=open_ledger(str(tmp_path / "l.db"), clock=sandbox.clock),
                                approver=CallbackApprover(lambda r: True), budget_id="otel")
    specs = {s.name: s for s in tk.specs()}
    try:
        await specs["discover_merchants"].ainvoke({})
        until = (sandbox.clock.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        mandate = await specs["request_mandate"].ainvoke({"purpose": "eSIMs", "budget": "30.00", "expires_at": until,
                                                          "merchant_ids": ["SUNNY-TOURS"]})
        await specs["search_offers"].ainvoke({"query": "eSIM", "merchant_ids": ["SUNNY-TOURS"]})
        first = await specs["checkout"].ainvoke({"offer_id": "SUNNY-TOURS:SUN-ESIM-ASIA"})
        await specs["pay"].ainvoke({"checkout_id": first["checkout_id"]})
        second = await specs["checkout"].ainvoke({"offer_id": "SUNNY-TOURS:SUN-ESIM-ASIA"})
        with pytest.raises(PolicyViolation):
            await specs["pay"].ainvoke({"checkout_id": second["checkout_id"], "mode": "human_present"})
        secrets = [tk.state.wallet.token_id.reveal(), tk.state.mandates[0].l2.reveal()]  # type: ignore[union-attr]
    finally:
        await tk.aclose()
        await tk.ledger.close()
    assert mandate["status"] == "ACTIVE"

    finished = spans.get_finished_spans()
    names = [s.name for s in finished]
    for expected in ("amp.pay", "amp.decide", "amp.reserve", "amp.approval", "amp.commit",
                     "amp.call.applyCredential", "amp.call.startPayment"):
        assert expected in names, (expected, names)
    pay = next(s for s in finished if s.name == "amp.pay")
    assert pay.attributes["amp.merchant_id"] == "SUNNY-TOURS" and pay.attributes["amp.amount_minor"] == 1999
    children = {s.name for s in finished if s.parent is not None and s.parent.span_id == pay.context.span_id}
    assert {"amp.reserve", "amp.approval", "amp.commit"} <= children
    refused = [s for s in finished if s.name == "amp.pay" and s.attributes.get("amp.error")]
    assert [s.attributes["amp.error"] for s in refused] == ["POLICY_VIOLATION"]
    dumped = json.dumps([dict(s.attributes or {}) for s in finished], default=str)
    assert not any(secret[:24] in dumped for secret in secrets)

    metrics = _metrics(reader)
    assert ({"outcome": "paid", "currency": "USD"}, 1) in metrics["amp_tools.payments"]
    assert ({"outcome": "refused", "currency": "USD"}, 1) in metrics["amp_tools.payments"]
    assert metrics["amp_tools.refusals"] == [({"rule": "total_budget"}, 1)]
    assert metrics["amp_tools.spend"] == [({"currency": "USD"}, 1999)]
    [(attrs, (count, _seconds))] = metrics["amp_tools.approval.wait"]
    assert attrs == {"approved": True} and count == 1


def test_off_by_default_and_nothing_imported() -> None:
    code = ("import sys, amp_tools, amp_tools.toolkit, amp_tools.payments, amp_tools.telemetry as t; "
            "assert not t.enabled(); print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
    assert telemetry.span("x") is telemetry.span("y")  # one shared no-op: no allocation per call when off
