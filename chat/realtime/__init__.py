"""The sockets: routing, the room and lobby consumers, the process's registry of its sockets and
its scheduler, and what follows them (presence, typing, catch-up, liveness, layer watch, unread).
"""
