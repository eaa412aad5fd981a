"""``python -m cluster up|down|status`` (``make run`` runs ``up``)."""

import argparse
import sys

from cluster import local, submit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Redis (unless REDIS_URL is set), a Ray head and the Serve app; "
                                   "stays in the foreground until Ctrl-C or SIGTERM")
    up.add_argument("--ray-port", type=int, default=None,
                    help="fixed GCS port so other nodes can join (default: a private in-process head)")
    up.add_argument("--dashboard-host", default="127.0.0.1", help="dashboard bind address (default 127.0.0.1)")
    up.add_argument("--num-cpus", type=int, default=None, help="CPUs this head offers to chunks (default: all)")
    sub.add_parser("down", help="stop the stack started by 'up' in this directory")
    sub.add_parser("status", help="show what 'up' started and whether it is healthy")
    submit.add_submit_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "up":
        return local.up(args.ray_port, args.dashboard_host, args.num_cpus)
    if args.command == "submit":
        return submit.run_submit(args)
    if args.command == "down":
        return local.down()
    return local.status()


if __name__ == "__main__":
    sys.exit(main())
