"""`python -m tests.bench.status`: what the connection status costs, idle and while messages flow.

One daphne (ours, the Procfile's options, DEBUG off) on a fresh SQLite file. N sockets
(--clients, 500) open one room and sync as their page does. Then the room stays idle
for --idle seconds (35): every frame a socket gets is a status refresh, and the target
is at most one per socket per 10 s. Then a signed-in sender posts once a second for
--flow seconds (20): the target is no frame beyond the messages themselves (each
message frame carries the status). Printed: frames per socket in each phase, and the
server's CPU time per phase.
"""

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from . import servers
from .loadgen import ws_connect

SETUP = """
from django.contrib.auth.models import User
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
sender = User.objects.create_user("sender")
client = Client()
client.force_login(sender)
print("sessionid=" + client.cookies["sessionid"].value + "; csrftoken=" + _get_new_csrf_string())
"""


def frame(fields: dict[str, str]) -> str:
    return json.dumps({**fields, "HEADERS": {"HX-Request": "true"}})


class Tally:
    def __init__(self) -> None:
        self.phase = "connect"
        self.frames: Counter[tuple[str, str]] = Counter()  # (phase, kind)

    def count(self, text: str) -> None:
        if "beforeend:#messages" in text:
            kind = "message"
        elif 'id="presence"' in text:  # who-is-here updates (they also carry a status): not liveness's
            kind = "presence"
        elif 'id="connection-status"' in text:
            kind = "status only"
        else:
            kind = "other"
        self.frames[self.phase, kind] += 1


async def read(ws, tally: Tally) -> None:
    while (text := await ws.recv()) is not None:
        tally.count(text)


async def scenario(port: int, cookie: str, csrf: str, clients: int, idle: float, flow: float, sample) -> dict:
    origin = f"http://{servers.HOST}:{port}"
    tally = Tally()
    sockets = []
    for start in range(0, clients, 100):  # in waves: this bench is about steady state, not the storm
        batch = await asyncio.gather(
            *(
                ws_connect(servers.HOST, port, "/ws/chat/status/", origin=origin)
                for _ in range(start, min(clients, start + 100))
            )
        )
        sockets += batch
    readers = [asyncio.create_task(read(ws, tally)) for ws in sockets]
    for ws in sockets:
        await ws.send_text(frame({"after": "0"}))
    await asyncio.sleep(2)

    results = {}
    tally.phase = "idle"
    before, started = sample(), time.monotonic()
    await asyncio.sleep(idle)
    after = sample()
    results["idle"] = {"seconds": time.monotonic() - started, "cpu_s": after["cpu_s"] - before["cpu_s"]}

    sender = await ws_connect(servers.HOST, port, "/ws/chat/status/", origin=origin, cookie=cookie)
    sender_reader = asyncio.create_task(read(sender, Tally()))
    await sender.send_text(frame({"after": "0"}))
    await asyncio.sleep(1)
    tally.phase = "flow"
    before, started = sample(), time.monotonic()
    sent = 0
    while time.monotonic() - started < flow:
        message = {"message": f"tick {sent}", "token": str(uuid.uuid4()), "csrfmiddlewaretoken": csrf}
        await sender.send_text(frame(message))
        sent += 1
        await asyncio.sleep(1)
    await asyncio.sleep(2)
    after = sample()
    results["flow"] = {"seconds": time.monotonic() - started, "cpu_s": after["cpu_s"] - before["cpu_s"], "sent": sent}
    for ws in [*sockets, sender]:
        ws.close()
    for task in [*readers, sender_reader]:
        task.cancel()
    results["frames"] = dict(tally.frames)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.status", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=500, help="sockets in the room (500)")
    parser.add_argument("--idle", type=float, default=35.0, help="seconds the room stays idle (35)")
    parser.add_argument("--flow", type=float, default=20.0, help="seconds of one message a second (20)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="chat-status-"))
    env = servers.base_env(run_id=uuid.uuid4().hex[:8], database_url=f"sqlite:///{workdir / 'bench.sqlite3'}")
    env["CHAT_SOCKET_RATE"] = "100"  # the one sender posts once a second for a while
    env["CHAT_LIMIT_SOCKETS_PER_IP"] = str(2 * args.clients + 100)  # every socket comes from this machine
    started = []
    try:
        servers.manage(env, "migrate", "--noinput")
        cookie = servers.manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]
        csrf = cookie.split("csrftoken=")[1]
        started = servers.start_servers(
            app="project.asgi:application", count=1, env=env, log_dir=workdir, label="status", backlog=None
        )
        servers.wait_ready(started)
        load = Path("/proc/loadavg").read_text().split()[0]
        results = asyncio.run(
            scenario(started[0].port, cookie, csrf, args.clients, args.idle, args.flow, lambda: servers.sample(started))
        )
    finally:
        servers.stop_servers(started)
        shutil.rmtree(workdir, ignore_errors=True)

    frames, clients = results["frames"], args.clients
    idle, flow = results["idle"], results["flow"]
    idle_status = frames.get(("idle", "status only"), 0) / clients
    idle_rate = idle_status / idle["seconds"] * 10
    flow_extra = (frames.get(("flow", "status only"), 0) + frames.get(("flow", "other"), 0)) / clients
    flow_messages = frames.get(("flow", "message"), 0) / clients
    presence = {phase: frames.get((phase, "presence"), 0) / clients for phase in ("idle", "flow")}
    print(f"{clients} sockets in one room, one daphne (load average before: {load})")
    print(
        f"idle {idle['seconds']:.0f} s: {idle_status:.2f} status frames per socket = {idle_rate:.2f} per 10 s "
        f"(target <= 1: {'yes' if idle_rate <= 1.0 else 'NO'}); server CPU {idle['cpu_s']:.2f} s; "
        f"besides, {presence['idle']:.2f} presence frames per socket (the last joins' list)"
    )
    print(
        f"flow {flow['seconds']:.0f} s, {flow['sent']} messages: {flow_messages:.1f} message frames and "
        f"{flow_extra:.2f} other frames per socket (target 0 extra: {'yes' if flow_extra < 0.05 else 'NO'}); "
        f"server CPU {flow['cpu_s']:.2f} s; besides, {presence['flow']:.2f} presence frames per socket"
    )
    return 0 if idle_rate <= 1.0 and flow_extra < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
