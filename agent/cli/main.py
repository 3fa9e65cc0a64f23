"""``camwatch``: run the agent, check a config, probe a camera, show status, run the demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__
from agent.stream.brands import BRANDS
from common.i18n import LANGUAGES, SPEAKER, _, language_of


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="camwatch", description=_("Camera health and events agent for monitoring centers.")
    )
    p.add_argument("--version", action="version", version=f"camwatch {__version__}")
    p.add_argument(
        "--lang", choices=LANGUAGES, help=_("language of the messages (default: from the locale, LANG=vi_VN.UTF-8)")
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help=_("run the ward agent"))
    run.add_argument("--config", required=True, help=_("path of the ward's TOML config"))

    check = sub.add_parser("check-config", help=_("validate a config file and list every problem"))
    check.add_argument("path")

    probe = sub.add_parser(
        "probe",
        help=_("connect to one camera and report what it sends (for installers)"),
        description=_("camwatch probe URL, or camwatch probe --brand BRAND HOST[:PORT] to find the streams by brand"),
    )
    probe.add_argument(
        "url", metavar="URL|HOST", help=_("rtsp://user:password@host:port/path; with --brand: the address")
    )
    probe.add_argument(
        "--brand",
        choices=sorted(BRANDS),
        help=_("try the brand's documented main and sub stream paths on HOST and print the [[cameras]] block"),
    )
    probe.add_argument("--user", default="admin", help=_("with --brand: the user (default admin; password asked)"))
    probe.add_argument("--channel", type=int, default=1, help=_("with --brand: the channel, on an NVR (default 1)"))
    probe.add_argument("--id", dest="camera_id", help=_("with --brand: the camera id in the block (default from HOST)"))
    probe.add_argument("--snapshot", metavar="FILE", help=_("save the first decoded frame as JPEG"))
    probe.add_argument("--json", action="store_true", help=_("print one JSON object"))
    probe.add_argument("--seconds", type=float, default=5.0, help=_("how long to measure fps/bitrate/GOP (default 5)"))
    probe.add_argument("--timeout", type=float, default=10.0, help=_("give up connecting after this long (default 10)"))

    status = sub.add_parser("status", help=_("table of every camera's retained health from the broker"))
    status.add_argument("--broker", default="mqtt://127.0.0.1:1883", help=_("mqtt://[user:pass@]host:port"))
    status.add_argument("--ward", help=_("only this ward"))
    status.add_argument("--prefix", default="camwatch", help=_("topic prefix (default camwatch)"))
    status.add_argument("--watch", action="store_true", help=_("keep refreshing"))
    status.add_argument("--json", action="store_true", help=_("print JSON lines instead of a table"))

    center = sub.add_parser("center", help=_("the monitoring center: ingest every ward, uptime pages and API"))
    center.add_argument("--config", required=True, help=_("path of the center's TOML config"))
    center_sub = center.add_subparsers(dest="center_command", metavar="ACTION")
    add_user = center_sub.add_parser("add-user", help=_("create or update an account (password from a prompt)"))
    add_user.add_argument("name")
    add_user.add_argument("--role", choices=["viewer", "admin"], required=True)
    add_token = center_sub.add_parser("add-token", help=_("create or replace an API token for another system"))
    add_token.add_argument("name")
    add_token.add_argument("--role", choices=["viewer", "admin"], default="viewer")
    remove_user = center_sub.add_parser("remove-user", help=_("remove an account and end its sessions"))
    remove_user.add_argument("name")
    revoke_token = center_sub.add_parser("revoke-token", help=_("revoke another system's API token"))
    revoke_token.add_argument("name")
    center_sub.add_parser("list-users", help=_("the accounts and API tokens (names and roles)"))

    demo = sub.add_parser("demo", help=_("the whole pipeline on this machine: broker, simulated cameras, agent"))
    demo.add_argument(
        "--duration", type=float, default=0, help=_("stop after this many seconds (default: until Ctrl-C)")
    )
    demo.add_argument("--port", type=int, default=0, help=_("broker port (default: a free one)"))
    return p


def choose_language(argv: Sequence[str]) -> list[str]:
    """Speak ``--lang``'s language (anywhere on the line), else the locale's; the line without ``--lang``."""
    rest, lang, args = [], None, iter(argv)
    for arg in args:
        if arg == "--lang":
            lang = next(args, None)
        elif arg.startswith("--lang="):
            lang = arg.removeprefix("--lang=")
        else:
            rest.append(arg)
    SPEAKER.use(lang if lang in LANGUAGES else language_of())
    if lang is not None and lang not in LANGUAGES:
        rest = ["--lang", lang, *rest]  # let argparse say what is wrong with it
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    line = choose_language(sys.argv[1:] if argv is None else argv)  # before the parser: its help is translated
    args = build_parser().parse_args(line)
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
