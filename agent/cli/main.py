"""``camwatch``: run the agent, check a config, probe a camera, show status, run the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__
from agent.stream.brands import BRANDS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="camwatch", description="Camera health and events agent for monitoring centers.")
    p.add_argument("--version", action="version", version=f"camwatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the ward agent")
    run.add_argument("--config", required=True, help="path of the ward's TOML config")

    check = sub.add_parser("check-config", help="validate a config file and list every problem")
    check.add_argument("path")

    probe = sub.add_parser(
        "probe",
        help="connect to one camera and report what it sends (for installers)",
        description="camwatch probe URL, or camwatch probe --brand BRAND HOST[:PORT] to find the streams by brand",
    )
    probe.add_argument("url", metavar="URL|HOST", help="rtsp://user:password@host:port/path; with --brand: the address")
    probe.add_argument(
        "--brand",
        choices=sorted(BRANDS),
        help="try the brand's documented main and sub stream paths on HOST and print the [[cameras]] block",
    )
    probe.add_argument("--user", default="admin", help="with --brand: the user (default admin; password asked)")
    probe.add_argument("--channel", type=int, default=1, help="with --brand: the channel, on an NVR (default 1)")
    probe.add_argument("--id", dest="camera_id", help="with --brand: the camera id in the block (default from HOST)")
    probe.add_argument("--snapshot", metavar="FILE", help="save the first decoded frame as JPEG")
    probe.add_argument("--json", action="store_true", help="print one JSON object")
    probe.add_argument("--seconds", type=float, default=5.0, help="how long to measure fps/bitrate/GOP (default 5)")
    probe.add_argument("--timeout", type=float, default=10.0, help="give up connecting after this long (default 10)")

    status = sub.add_parser("status", help="table of every camera's retained health from the broker")
    status.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="mqtt://[user:pass@]host:port")
    status.add_argument("--ward", help="only this ward")
    status.add_argument("--prefix", default="camwatch", help="topic prefix (default camwatch)")
    status.add_argument("--watch", action="store_true", help="keep refreshing")
    status.add_argument("--json", action="store_true", help="print JSON lines instead of a table")

    center = sub.add_parser("center", help="the monitoring center: ingest every ward, uptime pages and API")
    center.add_argument("--config", required=True, help="path of the center's TOML config")
    center_sub = center.add_subparsers(dest="center_command", metavar="ACTION")
    add_user = center_sub.add_parser("add-user", help="create or update an account (password from a prompt)")
    add_user.add_argument("name")
    add_user.add_argument("--role", choices=["viewer", "admin"], required=True)
    add_token = center_sub.add_parser("add-token", help="create or replace an API token for another system")
    add_token.add_argument("name")
    add_token.add_argument("--role", choices=["viewer", "admin"], default="viewer")
    remove_user = center_sub.add_parser("remove-user", help="remove an account and end its sessions")
    remove_user.add_argument("name")
    revoke_token = center_sub.add_parser("revoke-token", help="revoke another system's API token")
    revoke_token.add_argument("name")
    center_sub.add_parser("list-users", help="the accounts and API tokens (names and roles)")

    demo = sub.add_parser("demo", help="the whole pipeline on this machine: broker, simulated cameras, agent")
    demo.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--port", type=int, default=0, help="broker port (default: a free one)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from common.logs import setup_logging

    # Commands that print their own findings only need errors in the log.
    setup_logging("warning" if args.command in ("run", "demo") else "error")
    try:
        if args.command == "run":
            from agent.cli.run import cmd_run

            return cmd_run(args.config)
        if args.command == "check-config":
            from agent.cli.check import cmd_check

            return cmd_check(args.path)
        if args.command == "probe" and args.brand:
            from agent.cli.survey import cmd_survey

            return cmd_survey(
                args.brand,
                args.url,
                user=args.user,
                channel=args.channel,
                camera=args.camera_id,
                as_json=args.json,
                seconds=args.seconds,
                timeout=args.timeout,
            )
        if args.command == "probe":
            from agent.cli.probe import cmd_probe

            return cmd_probe(
                args.url, snapshot=args.snapshot, as_json=args.json, seconds=args.seconds, timeout=args.timeout
            )
        if args.command == "status":
            from agent.cli.status import cmd_status

            return cmd_status(args.broker, ward=args.ward, prefix=args.prefix, watch=args.watch, as_json=args.json)
        if args.command == "center":
            from center.cli import cmd_add_token, cmd_add_user, cmd_center, cmd_list_users, cmd_remove

            if args.center_command == "add-user":
                return cmd_add_user(args.config, args.name, args.role)
            if args.center_command == "add-token":
                return cmd_add_token(args.config, args.name, args.role)
            if args.center_command in ("remove-user", "revoke-token"):
                return cmd_remove(args.config, args.center_command, args.name)
            if args.center_command == "list-users":
                return cmd_list_users(args.config)
            return cmd_center(args.config)
        if args.command == "demo":
            from agent.cli.demo import cmd_demo

            return cmd_demo(duration=args.duration, port=args.port)
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
