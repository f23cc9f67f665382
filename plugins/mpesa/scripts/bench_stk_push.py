"""How much one STK push costs the M-Pesa simulator, at the start and at the end of a run.

Drives N STK pushes (one wallet each, so every push is in flight at once, as under load)
through the simulator app over httpx's ASGI transport, in one event loop, and prints
pushes/s and CPU ms per push for the first and the last `--window` pushes. A simulator
whose cost per push grows with the pushes before it shows it as a slower end.

    uv run python plugins/mpesa/scripts/bench_stk_push.py --pushes 2000 [--no-gc]

`--no-gc` turns the cyclic garbage collector off for the run: its full collections cost in
proportion to the heap and land in whichever window they fall, hiding the simulator's own
cost per push.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import time

import httpx
from mmo_mpesa import client
from mmo_mpesa.settings import SANDBOX_PASSKEY, MpesaSettings
from mmo_mpesa.simulator import create_simulator


def _push(phone: str, stamp: str) -> dict[str, str]:
    return {
        "BusinessShortCode": "174379",
        "Password": client.password("174379", SANDBOX_PASSKEY, stamp),
        "Timestamp": stamp,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": "150",
        "PartyA": phone,
        "PartyB": "174379",
        "PhoneNumber": phone,
        "CallBackURL": "http://127.0.0.1:9/cb",
        "AccountReference": "BENCH",
        "TransactionDesc": "Bench",
    }


def _report(name: str, wall: float, cpu: float, count: int) -> None:
    print(f"{name:>5}: {count / wall:8.0f} pushes/s  {cpu * 1000 / count:6.3f} CPU ms/push")


async def run(pushes: int, window: int) -> None:
    # callbacks far in the future: the run measures the pushes, not the callbacks
    app = create_simulator(MpesaSettings(callback_delay=3600))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://daraja") as http:
        token = await http.get(
            "/oauth/v1/generate?grant_type=client_credentials",
            auth=("mmo-sandbox-consumer-key", "mmo-sandbox-consumer-secret"),
        )
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        stamp = client.timestamp()
        marks: list[tuple[float, float]] = []
        for i in range(pushes):
            if i in (0, window, pushes - window):
                marks.append((time.perf_counter(), time.process_time()))
            answer = await http.post(
                "/mpesa/stkpush/v1/processrequest",
                json=_push(f"2547{i:08d}", stamp),
                headers=headers,
            )
            if answer.status_code != 200:
                raise SystemExit(f"push {i}: {answer.status_code} {answer.text}")
        marks.append((time.perf_counter(), time.process_time()))
    simulation = app.state.simulation
    await simulation.callbacks.close()
    (w0, c0), (w1, c1), (w2, c2), (w3, c3) = marks
    print(f"{pushes} STK pushes, windows of {window}")
    _report("start", w1 - w0, c1 - c0, window)
    _report("end", w3 - w2, c3 - c2, window)
    _report("all", w3 - w0, c3 - c0, pushes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--no-gc", action="store_true", help="no cyclic GC during the run")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    asyncio.run(run(args.pushes, args.window))


if __name__ == "__main__":
    main()
