"""No secret ever reaches a model or a log.

Full delegated (L3) and human-present (IMMEDIATE) flows run through the toolkit's tools, and
one purchase through the LangChain adapter's tool objects, with every logger captured at
DEBUG. Every secret the session and the sandbox hold (tokenIds, L1, L2, L3, payment tokens,
the private keys' ``d``) is then searched for, whole or as any 24-character piece, in every
tool result, every error text and dict, every log record, and the reprs of the objects a
program might print.
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

import pytest

from amp_langchain import to_langchain_tools
from amp_tools.errors import ToolError
from tests.security.security_support import Session, expiry, leaks, secrets_of, session


async def _flows(s: Session, results: list[str], errors: list[str]) -> None:
    async def call(name: str, **args: Any) -> Any:
        try:
            out = await s.specs[name].ainvoke(args)
        except ToolError as exc:
            errors.extend([str(exc), repr(exc), json.dumps(exc.to_dict(), default=str),
                           "".join(traceback.format_exception(exc))])
            return None
        results.append(json.dumps(out, ensure_ascii=False))
        return out

    await call("discover_merchants")
    flights = await call("search_offers", query="flight Kuala Lumpur", category="flight")
    cars = await call("search_offers", query="car", category="car")
    mandate = await call("request_mandate", purpose="Fly me to Kuala Lumpur", expires_at=expiry(s),
                         merchant_ids=["SKYLARK-AIR"])
    assert mandate["status"] == "ACTIVE"
    await call("mandate_status")
    ck = await call("checkout", offer_id=flights["offers"][0]["offer_id"])
    paid = await call("pay", checkout_id=ck["checkout_id"])
    assert paid["status"] == "paid" and paid["mode"] == "delegated"
    again = await call("pay", checkout_id=ck["checkout_id"])
    assert again["status"] == "already_paid"
    car = await call("checkout", offer_id=cars["offers"][0]["offer_id"])
    present = await call("pay", checkout_id=car["checkout_id"], mode="human_present")
    assert present["status"] == "paid" and present["mode"] == "human_present"
    await call("order_status", checkout_id=ck["checkout_id"])
    refunded = await call("refund", checkout_id=ck["checkout_id"], amount="10.00")
    assert refunded["status"] == "refunded"
    await call("budget_status")
    # Failures carry messages too.
    assert await call("pay", checkout_id="CKO-NOT-THERE") is None
    assert await call("refund", checkout_id=car["checkout_id"], amount="99999.00") is None
    assert await call("mandate_status", mandate_id="nope") is None
    # The same session through LangChain's tool objects.
    lc = {t.name: t for t in to_langchain_tools(s.toolkit.specs())}
    made = await lc["checkout"].ainvoke({"offer_id": flights["offers"][0]["offer_id"]})
    lc_paid = await lc["pay"].ainvoke({"checkout_id": json.loads(made)["checkout_id"]})
    assert json.loads(lc_paid)["status"] == "paid"
    lc_error = await lc["pay"].ainvoke({"checkout_id": "CKO-NOT-THERE"})
    results.extend([made, lc_paid, str(lc_error)])


async def test_no_secret_in_results_errors_logs_or_reprs(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "asyncio", "amp_tools"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    s = session(folder=tmp_path)
    results: list[str] = []
    errors: list[str] = []
    await _flows(s, results, errors)

    logs = []
    for record in caplog.records:
        logs.append(record.getMessage())
        logs.append(repr(record.args))
        if record.exc_info:
            logs.append("".join(traceback.format_exception(*record.exc_info)))
    tk = s.toolkit
    reprs = [repr(tk), str(tk), repr(vars(tk)), repr(tk.client), str(tk.client), repr(tk.agent_key), str(tk.agent_key),
             repr(tk.state), str(tk.state.wallet), repr(tk.state.mandates), repr(list(tk.state.checkouts.values())),
             f"{tk.state.wallet.token_id}", f"{tk.state.mandates[0].l2:>20}"]
    secrets = secrets_of(s)
    # The collection itself worked: two bindings' worth of tokens, L1/L2s, three payment tokens, three keys.
    assert len(s.sandbox.state.payment_tokens) == 3
    assert len(secrets) >= 10
    assert len(results) >= 15 and len(errors) >= 8 and logs
    assert leaks(secrets, results) == []
    assert leaks(secrets, errors) == []
    assert leaks(secrets, logs) == []
    assert leaks(secrets, reprs) == []
    # The checker is not blind: a result that did carry a secret piece is caught.
    some = max(secrets, key=len)
    assert leaks(secrets, [f"oops {some[5:40]} oops"]) != []
