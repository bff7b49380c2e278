"""The Procfile's `web:` daphne command, so tests and the bench run daphne as production does."""

import re
import shlex
from pathlib import Path

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def web_daphne(*, port: int, host: str = "127.0.0.1", backlog: int | None = None) -> tuple[list[str], str]:
    """The daphne options of the `web:` line (timeouts, pings, limits), listening on host:port
    instead of the router's $PORT, and the application. `backlog` overrides the listen backlog."""
    web = next(line.removeprefix("web:") for line in PROCFILE.read_text().splitlines() if line.startswith("web:"))
    words = shlex.split(web.rpartition("&&")[2])  # the daphne command after any set-up step
    assert words[0] == "daphne", f"the Procfile's web line does not run daphne: {web}"
    options, application, rest = [], words[-1], words[1:-1]
    endpoint = f"tcp:port={port}:interface={host}"
    while rest:
        word = rest.pop(0)
        if word in {"-b", "--bind", "-p", "--port"}:
            rest.pop(0)
        elif word in {"-e", "--endpoint"}:
            endpoint = rest.pop(0)
            endpoint = re.sub(r"port=[^:]*", f"port={port}", endpoint)
            endpoint = re.sub(r"interface=[^:]*", f"interface={host}", endpoint)
        else:
            options.append(word)
    if backlog is not None:
        endpoint = re.sub(r":backlog=\d+", "", endpoint) + f":backlog={backlog}"
    return ["-e", endpoint, *options], application
