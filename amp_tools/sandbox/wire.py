"""Request models and response envelopes shared by the sandbox's HTTP routers.

Each role answers in its reference envelope (amp-protocol.md 11.1): the CP's flat
``{success, ..., error}`` with every field present, the merchant's ``{success, data}`` /
``{success:false, errorCode, errorMessage}``, the network's and acquirer's
``{success, resultCode, resultMessage, data}`` and the MPP's ``{result:{...}}``. Business
refusals are HTTP 200; schema violations are FastAPI's 422; injected faults are 504 / 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from amp_tools.errors import AmpToolsError
from amp_tools.money import Money
from amp_tools.sandbox import codes as C
from amp_tools.sandbox.codes import Refusal, Timeout, UpstreamError
from amp_tools.sandbox.state import Context

__all__ = ["Body", "ItemIn", "ItemsIn", "fault_response", "locked", "money_in", "run"]


class Body(BaseModel):
    """A JSON object body; unknown fields are kept (reference clients send extras)."""

    model_config = ConfigDict(extra="allow")

    def raw(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class ItemIn(BaseModel):
    productId: str = Field(min_length=1)
    quantity: int = Field(ge=1)


class ItemsIn(BaseModel):
    items: list[ItemIn]


def money_in(value: Any, field: str) -> Money:
    """Wire money (``{cent, currency}`` and friends) or a `Refusal` naming the field."""
    try:
        return Money.from_wire(value)
    except AmpToolsError as exc:
        raise Refusal(C.INVALID_PARAM, f"{field}: {exc.message}; expected {{cent:<int minor units>, currency}}") \
            from None


@contextmanager
def locked(ctx: Context) -> Iterator[None]:
    with ctx.state.lock:
        yield


def fault_response(exc: Timeout | UpstreamError) -> JSONResponse:
    if isinstance(exc, Timeout):
        return JSONResponse({"detail": str(exc)}, status_code=504,
                            headers={"X-Sandbox-Fault": "timeout_after" if exc.after else "timeout_before"})
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers={"X-Sandbox-Fault": "http_500"})


def run(ctx: Context, work: Callable[[], Any], on_refusal: Callable[[Refusal], Any]) -> Any:
    """Run `work` under the state lock; render refusals and injected faults."""
    try:
        with locked(ctx):
            return work()
    except Refusal as exc:
        return on_refusal(exc)
    except (Timeout, UpstreamError) as exc:
        return fault_response(exc)


def merchant_error(exc: Refusal) -> dict[str, Any]:
    out: dict[str, Any] = {"success": False, "errorCode": exc.code, "errorMessage": exc.text}
    out.update(exc.extra)
    return out


def aplus_error(exc: Refusal) -> dict[str, Any]:
    return {"success": False, "resultCode": exc.code, "resultMessage": exc.text, "data": exc.extra or None}


def aplus_ok(data: Any) -> dict[str, Any]:
    return {"success": True, "resultCode": "SUCCESS", "resultMessage": "SUCCESS", "data": data}


def mpp_result(code: str = "SUCCESS", message: str = "success", ok: bool = True) -> dict[str, Any]:
    return {"resultCode": code, "resultStatus": "S" if ok else "F", "resultMessage": message}
