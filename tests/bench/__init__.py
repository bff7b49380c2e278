"""The fan-out benchmark (issue 4): many sockets in one room, one sender, ours against the Channels tutorial.

Run from the repository root:

    .venv/bin/python -m tests.bench                                  # 1,000 clients, 1 msg/s, 20 s, all configs
    .venv/bin/python -m tests.bench --clients 100 --duration 5 --configs memory-1,redis-1
    .venv/bin/python -m tests.bench --database-url postgres://postgres@127.0.0.1:5432/test --json bench.json

    .venv/bin/python -m tests.bench --configs memory-1 --clients 5000 --duration 5     # a reconnect storm
    .venv/bin/python -m tests.bench --configs memory-1 --clients 2000 --duration 5 --daphne-defaults
    .venv/bin/python -m tests.bench --configs memory-1,redis-pubsub-1 --apps ours --room-kind public,private

For each configuration (`memory-1`: in-memory layer, one daphne; `redis-1`/`redis-2`:
RedisChannelLayer, one or two daphnes; `redis-pubsub-1`/`redis-pubsub-2`: the same with
RedisPubSubChannelLayer, picked through CHANNEL_LAYER; `redis-pubsub-2-shards`: two
daphnes over two private redis-servers the bench starts, REDIS_URL listing both) and each app (`tutorial`: the
tutorial's consumer in tutorial_consumer.py, served by tutorial_asgi.py; `ours`:
project.asgi:application), the bench

1. starts real daphne processes with production-like settings (DJANGO_DEBUG=0, a secret,
   DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost, no SSL redirect; the daphne flags of the Procfile's
   `web:` line, listening on 127.0.0.1) on a fresh SQLite file, migrated, or on --database-url;
   REDIS_URL points at a dedicated Redis db index (--redis-url, default /5) that is FLUSHDB'd first;
2. connects the sender, a signed-in user (a real login session created with Django's test
   client in `manage.py shell`), opens and closes one socket on every other process (a process's
   first socket pays one-time costs, not per-socket ones), and reads the servers' memory;
3. opens --clients receivers at once, split evenly across the processes, and times each
   handshake; ours' receivers are each a signed-in user with a login session of its own (so
   every connect loads a session and a user; --anonymous: none), the tutorial's are anonymous
   (its consumer does no auth); ours' also send the #sync frame htmx sends on every open;
4. after --settle idle seconds reads the memory again: (RSS after - RSS before) / clients;
5. sends --rate messages a second for --duration seconds, as htmx's ws-send frames them for ours
   ({"message", "token", "HEADERS", ...}) and as the tutorial's page does for the reference
   ({"message"}); each text is `bench#<seq>@<send time>`, which every receiver finds in the
   frame (ours: the `<p class="body">` of the message fragment; tutorial: the JSON) to count
   the delivery once and its latency;
6. waits up to --drain seconds for the last deliveries, closes everything, stops the servers
   and waits until their ports are free.

Then it prints one row per configuration and app: failed connects, sockets the server dropped,
connect time, delivered ratio (deliveries / (messages x clients)), latency percentiles,
deliveries per second, memory per idle connection, server CPU seconds while sending and per
delivered message (utime + stime of the server processes from /proc, so the load generator's
share of the cores does not count), Redis connections held while idle, and notable server log
lines ("Too many connections", tracebacks); then the targets of issues 4 and 12, checked;
--json PATH keeps every figure, and the PNG chart (--chart, default docs/benchmark.png; needs
matplotlib from tests/requirements.txt) shows latency percentiles, CPU per delivery and connect
times for both apps across the configurations. --daphne-defaults runs daphne with its default
options (the README's run command) instead of the Procfile's.

--room-kind public,private (issue 18) runs ours twice per configuration, the same signed-in
receivers first in a public room, then in a private room made as the new-room form makes it
(services.room_create, the sender its owner) with every receiver added as a member in bulk; the
tutorial, which has no private rooms, runs in the public one only. Before a private row's load,
one socket with no login must be closed with 4404 before any frame (the room really is members
only). The bench then prints the ratio of server CPU per delivery private / public for each
configuration (issue 18's target: <= 1.05, as membership is checked when a socket connects and
when it posts, never per delivered message). The chart shows the public rows.

To size the Redis layer without touching the product: --redis-option NAME=VALUE merges keyword
arguments into the Redis host entry (e.g. max_connections=1000, socket_timeout=10),
--redis-plain-url measures the library defaults (the tutorial's bare URL), --backlog N gives
daphne a longer listen queue than Twisted's 50. Everything runs on 127.0.0.1
and every wait is bounded. The load generator (loadgen.py) is plain asyncio in this process;
the servers are separate processes. No file here is named test_*.py: pytest never collects it.
"""
