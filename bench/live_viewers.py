"""Live viewers through an alert storm (script/bench pages, bench/pages.sh).

VIEWERS people keep the Now page open, as a browser with handrail.js does: load the page,
open the stream its <body data-live> names, and on "changed" fetch only the changed rows
(<body data-rows>, with the page's shown incidents), keeping the stream open; "*" reloads
the whole page; a stream that ends is reopened with the last event's id (Last-Event-ID), as
EventSource does. Meanwhile OPENERS people open the whole Now page every half second, and an
alert storm changes CHANGES incidents a second: every 1/CHANGES s one of CHANGES
Alertmanager groups is delivered again with one more alert, so that incident gets a timeline
entry. Prints, over SECONDS: refreshes sent per second, the row fetches' and the whole page
loads' p50/p99, and errors. Standard library only; loopback only.

usage: live_viewers.py PORT VIEWER_TOKEN INTEGRATION_KEY VIEWERS CHANGES SECONDS
"""

import asyncio
import json
import math
import os
import re
import sys
import time

port, token, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
viewers, changes, seconds = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
HOST = "127.0.0.1"

loads = []  # (at, milliseconds) of whole page loads
fetches = []  # (at, milliseconds) of row fetches
refreshes = []  # when a "changed" arrived
errors = []
stop = asyncio.Event()
OPENERS = 4


async def request(method, path, headers, body=b""):
    """One HTTP/1.1 request on its own connection: (status, body)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(head.encode() + b"\r\n" + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


async def timed(path, record):
    started = time.perf_counter()
    status, body = await request("GET", path, {"Authorization": f"Bearer {token}"})
    record.append((time.monotonic(), (time.perf_counter() - started) * 1000))
    if status != 200:
        raise OSError(f"{path.split('?')[0]}: {status}")
    return body


def shown_numbers(html):
    """The incidents the page's lists show, as handrail.js finds them."""
    return re.findall(rb'<li[^>]*data-number="(\d+)"', html)


async def viewer():
    page = None
    last_id = None
    while not stop.is_set():
        try:
            if page is None:
                page = await timed("/", loads)
                rows = re.search(rb'data-rows="([^"]+)"', page).group(1).decode()
                live = re.search(rb'data-live="([^"]+)"', page).group(1).decode().replace("&amp;", "&")
                shown = shown_numbers(page)
                last_id = None
            reader, writer = await asyncio.open_connection(HOST, port)
            resume = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
            writer.write(
                f"GET {live} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n{resume}\r\n".encode()
            )
            await writer.drain()
            while not stop.is_set():
                line_task = asyncio.ensure_future(reader.readline())
                stop_task = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({line_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                if stop_task not in done:
                    stop_task.cancel()
                if line_task not in done:
                    line_task.cancel()
                    break
                line = line_task.result()
                if not line:
                    break  # the stream ended (its lifetime): EventSource reconnects
                if line.startswith(b"HTTP/1.1 ") and not line.startswith(b"HTTP/1.1 200"):
                    errors.append(f"live: {line.decode().strip()}")
                    await asyncio.sleep(1)
                    break
                if line.startswith(b"id: "):
                    last_id = line[4:].strip().decode()
                elif line.startswith(b"data: "):
                    refreshes.append(time.monotonic())
                    changed = line[6:].strip().decode()
                    if changed == "*":
                        page = None
                        break
                    fragment = await timed(f"{rows}?changed={changed}&shown={','.join(n.decode() for n in shown)}", fetches)
                    # The lists as the server orders them (handrail.js keeps its rows for the rest).
                    order = re.search(rb'data-open="([0-9,]*)" data-resolved="([0-9,]*)"', fragment)
                    shown = [n for n in (order.group(1) + b"," + order.group(2)).split(b",") if n]
            writer.close()
        except (OSError, AttributeError) as e:
            errors.append(f"viewer: {e}")
            page = None
            await asyncio.sleep(1)


async def opener():
    """Someone opening the whole Now page, every half second."""
    while not stop.is_set():
        try:
            await timed("/", loads)
        except OSError as e:
            errors.append(f"page: {e}")
        await asyncio.sleep(0.5)


async def deliver(auth, body):
    try:
        status, answer = await request("POST", "/api/v1/alerts/alertmanager", auth, body)
        if status >= 300:
            errors.append(f"delivery: {status} {answer[:200]!r}")
    except OSError as e:
        errors.append(f"delivery: {e}")


pending = set()


async def storm():
    # On schedule, each delivery on its own connection (a slow answer does not slow the storm).
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sizes = [0] * changes
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        group = n % changes
        sizes[group] += 1
        alerts = [
            {
                "status": "firing",
                "labels": {"alertname": "FeatureDriftHigh", "model": f"live-{group}", "feature": f"f{a}", "severity": "warning"},
                "annotations": {"summary": f"PSI drift on f{a}"},
                "startsAt": "2026-11-22T09:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"live-{group}-{a:04x}",
            }
            for a in range(sizes[group])
        ]
        body = {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="FeatureDriftHigh", model="live-{group}"}}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "handrail",
            "groupLabels": {"alertname": "FeatureDriftHigh", "model": f"live-{group}"},
            "commonLabels": {"alertname": "FeatureDriftHigh", "model": f"live-{group}"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": alerts,
        }
        pending.add(asyncio.ensure_future(deliver(auth, json.dumps(body).encode())))
        n += 1
        next_at += 1 / changes
        await asyncio.sleep(max(0, next_at - time.monotonic()))
    return n


began = time.monotonic()


async def main():
    tasks = [asyncio.ensure_future(viewer()) for _ in range(viewers)]
    tasks += [asyncio.ensure_future(opener()) for _ in range(OPENERS)]
    await asyncio.sleep(3)  # every viewer has its page and its stream
    start = time.monotonic()
    storm_task = asyncio.ensure_future(storm())
    await asyncio.sleep(seconds)
    stop.set()
    delivered = await storm_task
    await asyncio.gather(*pending)
    await asyncio.gather(*tasks, return_exceptions=True)
    def within(samples):
        return sorted(ms for at, ms in samples if start <= at <= start + seconds)

    def percentile(values, p):
        return round(values[max(0, math.ceil(p / 100 * len(values)) - 1)], 1) if values else float("nan")

    pages, rows = within(loads), within(fetches)
    sent = [t for t in refreshes if start <= t <= start + seconds]
    print(
        json.dumps(
            {
                "viewers": viewers,
                "seconds": seconds,
                "deliveries_per_s": round(delivered / seconds, 1),
                "refreshes_per_s": round(len(sent) / seconds, 1),
                "row_fetches": len(rows),
                "rows_p50_ms": percentile(rows, 50),
                "rows_p99_ms": percentile(rows, 99),
                "page_loads": len(pages),
                "page_p50_ms": percentile(pages, 50),
                "page_p99_ms": percentile(pages, 99),
                "client_cpu": round(time.process_time() / (time.monotonic() - began), 2),
                "errors": len(errors),
                "first_errors": errors[:5],
            }
        )
    )


asyncio.run(main())
# LIVE_DUMP=file: every page load and row fetch as (monotonic time, ms), to see when the slow ones came.
if os.environ.get("LIVE_DUMP"):
    with open(os.environ["LIVE_DUMP"], "w") as dump:
        json.dump({"loads": loads, "fetches": fetches}, dump)
