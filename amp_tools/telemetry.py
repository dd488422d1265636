"""OpenTelemetry traces and metrics of what agents spend: off by default, and free when off.

`enable()` (with the ``[otel]`` extra installed) turns on spans for each payment and its steps
(decide, reserve, approval wait, every AMP call, commit, release) and four metrics: payments by
outcome, refusals by rule, approval wait time, and spend by currency. Until then every hook is a
check of one module global; this module imports nothing of OpenTelemetry, so import time does not
change. Attributes carry ids, codes and amounts only: no secret, no personal data beyond ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["disable", "enable", "enabled", "record_approval_wait", "record_payment", "record_refusal", "span"]

_NOOP = contextlib.nullcontext()


class _Telemetry:
    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import metrics, trace

        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("amp_tools")
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("amp_tools")
        self.payments = meter.create_counter("amp_tools.payments", unit="1",
                                             description="Payments by outcome (paid, already_paid, refused, ...)")
        self.refusals = meter.create_counter("amp_tools.refusals", unit="1", description="Refused payments by rule")
        self.approval_wait = meter.create_histogram("amp_tools.approval.wait", unit="s",
                                                    description="How long a person took to answer an approval")
        self.spend = meter.create_counter("amp_tools.spend", unit="{minor_unit}",
                                          description="Committed spend in the budget currency's minor units")


_active: _Telemetry | None = None


def enable(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Start emitting (to the given providers, else OpenTelemetry's global ones)."""
    global _active
    try:
        _active = _Telemetry(tracer_provider, meter_provider)
    except ImportError as exc:
        from amp_tools.errors import ConfigError

        raise ConfigError(f"telemetry needs OpenTelemetry; install amp-agent-payments[otel] ({exc})") from None


def disable() -> None:
    global _active
    _active = None


def enabled() -> bool:
    return _active is not None


def span(name: str, attributes: Mapping[str, Any] | None = None) -> contextlib.AbstractContextManager[Any]:
    """A span when telemetry is on; a shared do-nothing context otherwise."""
    if _active is None:
        return _NOOP
    return _span(_active, name, attributes)


@contextlib.contextmanager
def _span(tel: _Telemetry, name: str, attributes: Mapping[str, Any] | None) -> Iterator[Any]:
    with tel.tracer.start_as_current_span(name, attributes={k: v for k, v in (attributes or {}).items()
                                                             if v is not None}) as current:
        try:
            yield current
        except BaseException as exc:
            code = getattr(exc, "code", None)
            current.set_attribute("amp.error", str(code or type(exc).__name__))
            raise


def record_payment(outcome: str, *, currency: str, spent_minor: int = 0) -> None:
    if _active is None:
        return
    _active.payments.add(1, {"outcome": outcome, "currency": currency})
    if spent_minor:
        _active.spend.add(spent_minor, {"currency": currency})


def record_refusal(rule: str | None) -> None:
    if _active is not None:
        _active.refusals.add(1, {"rule": rule or "unknown"})


def record_approval_wait(seconds: float, *, approved: bool) -> None:
    if _active is not None:
        _active.approval_wait.record(seconds, {"approved": approved})
