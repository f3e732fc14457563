"""Serve a MongoDB wire-protocol endpoint backed by mongoeco, for the test stack.

Runs under the side interpreter (Python >= 3.13) that has ``mongoeco[wire]``;
the test harness starts it as a subprocess and talks to it with pymongo.
The password comes from ``MONGO_WIRE_PASSWORD`` so it is not in argv.
Prints ``READY <port>`` on stdout once it accepts connections.
"""
import argparse
import asyncio
import os
import signal
import sys


async def _serve(args):
    from mongoeco.wire import AsyncMongoEcoProxyServer, WireAuthUser

    users = ()
    if args.username:
        roles = ({"role": "root", "db": "admin"},)
        password = os.environ.get("MONGO_WIRE_PASSWORD", "")
        users = (WireAuthUser(username=args.username, password=password, roles=roles),)
    if args.db_path:
        from mongoeco.engines.sqlite import SQLiteEngine

        engine = SQLiteEngine(args.db_path)
    else:
        from mongoeco.engines.memory import MemoryEngine

        engine = MemoryEngine()
    server = AsyncMongoEcoProxyServer(engine=engine, host=args.host, port=args.port, auth_users=users)
    address = await server.start()
    print(f"READY {address.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db-path", help="SQLite file to keep data in; in memory when not given")
    parser.add_argument("--username")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host != "::1":
        parser.error("the test server binds to loopback only")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
