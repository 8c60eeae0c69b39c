"""The ``monitor`` command line: run, once, check, test-alert, silence, deploy, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

import structlog

from monitor import __version__
from monitor.app.config import Config, load_config
from monitor.kernel.config.loading import ConfigError, register_environment_secrets
from monitor.kernel.logging import configure_logging
from monitor.kernel.redact import redact

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Watch databases, caches and real-user performance; page when it slips.",
    )
    parser.add_argument("--version", action="version", version=f"app-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c",
            "--config",
            help="YAML configuration file (default: $MONITOR_CONFIG, else the environment)",
        )

    run = sub.add_parser("run", help="run the daemon until SIGTERM/SIGINT")
    with_config(run)
    once = sub.add_parser("once", help="run every collector once and print the result")
    with_config(once)
    once.add_argument("--format", choices=["prometheus", "json", "table"], default="prometheus")
    once.add_argument("--notify", action="store_true", help="send what would fire")
    check = sub.add_parser("check", help="validate the config and try every target")
    with_config(check)
    check.add_argument(
        "--config-only",
        action="store_true",
        help="validate the configuration and stop, connecting to nothing (Heroku release phase)",
    )
    test_alert = sub.add_parser(
        "test-alert", help="send a labelled test alert and its resolve through each receiver"
    )
    with_config(test_alert)
    test_alert.add_argument("--receiver", default=None, help="only this receiver")
    test_alert.add_argument(
        "--severity",
        choices=["critical", "warning", "info"],
        default="info",
        help="severity of the test alert (default: info)",
    )
    silence = sub.add_parser("silence", help="add, list or expire runtime alert silences")
    silence_sub = silence.add_subparsers(dest="silence_command", required=True, metavar="ACTION")
    silence_add = silence_sub.add_parser("add", help="silence matching alerts for a while")
    with_config(silence_add)
    silence_add.add_argument(
        "--match",
        action="append",
        default=[],
        metavar="LABEL=VALUE",
        help="exact label matcher, repeatable (rule=NAME is alertname=NAME)",
    )
    silence_add.add_argument(
        "--match-re", action="append", default=[], metavar="LABEL=REGEX", help="regex matcher"
    )
    until = silence_add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", help="how long, e.g. 2h or 30m")
    until.add_argument("--until", help="end time, ISO 8601 with a zone (2026-03-01T06:00Z)")
    silence_add.add_argument("--start", help="start time, ISO 8601 with a zone (default: now)")
    silence_add.add_argument("--comment", required=True, help="why (shown with the silence)")
    silence_add.add_argument("--created-by", help="who (default: cli:$USER)")
    silence_list = silence_sub.add_parser("list", help="config and runtime silences")
    with_config(silence_list)
    silence_list.add_argument(
        "--all", action="store_true", help="include runtime silences that ended (kept 7 days)"
    )
    silence_expire = silence_sub.add_parser("expire", help="end a runtime silence now")
    with_config(silence_expire)
    silence_expire.add_argument("id", help="the id printed by `silence add` or `silence list`")
    deploy = sub.add_parser("deploy", help="record a deploy marker or print a release's report")
    deploy_sub = deploy.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")
    deploy_mark = deploy_sub.add_parser("mark", help="record a deploy (Heroku release phase, CI)")
    with_config(deploy_mark)
    deploy_mark.add_argument("--version", required=True, help="release number, e.g. v124")
    deploy_mark.add_argument("--commit", help="git SHA of the release")
    deploy_mark.add_argument("--app", help="app name (default: $HEROKU_APP_NAME)")
    deploy_mark.add_argument("--description", help="what changed")
    deploy_report = deploy_sub.add_parser("report", help="print a release's comparison table")
    with_config(deploy_report)
    deploy_report.add_argument("--app", help="only this app")
    deploy_report.add_argument("--version", help="release number (default: the newest compared)")
    demo = sub.add_parser("demo", help="run against a throwaway local PostgreSQL")
    demo.add_argument("--listen", default="127.0.0.1:9187")
    demo.add_argument("--duration", default=None, help="stop after this long (e.g. 60s)")
    demo.add_argument("--no-replica", action="store_true")
    return parser


def _report_config_error(exc: ConfigError) -> int:
    print("invalid configuration:", file=sys.stderr)
    for line in exc.problems:
        print(f"  {redact(line)}", file=sys.stderr)
    return EXIT_BAD_CONFIG


def _load(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise SystemExit(_report_config_error(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    return asyncio.run(_run_daemon(config))


async def _run_daemon(config: Config) -> int:
    from monitor.app.daemon import Daemon

    return await Daemon(config).run()


def cmd_once(args: argparse.Namespace) -> int:
    config = _load(args.config)
    return asyncio.run(_once(config, args.format, args.notify))


async def _once(config: Config, fmt: str, notify: bool) -> int:
    from monitor.app.once import collect_once, render
    from monitor.app.plugins import build_components, build_sources
    from monitor.kernel.component import Context
    from monitor.kernel.exposition import Exposition
    from monitor.kernel.snapshot_store import SnapshotStore

    store = SnapshotStore()
    exposition = Exposition(store)
    sources = build_sources(config)
    components = build_components(config, Context(store, exposition, config.http, config.interval))
    try:
        snapshots = await collect_once(sources, store)
    finally:
        for source in sources:
            await source.close()
    print(render(snapshots, exposition, fmt))
    for component in components:
        report = getattr(component, "report_once", None)
        if report is not None:
            await report(notify=notify, fmt=fmt)
    return EXIT_OK if all(s.ok for s in snapshots) else EXIT_FAILED


def cmd_check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if args.config_only:
        from alerts.rules.ruleset import build_rules

        # the rule pack with its overrides (ConfigError -> exit 2)
        build_rules(config.rules, postgres_targets=len(config.targets.postgres))
        print(f"{'ok':<5} {'config':<32} valid")
        if _print_exposure(config):
            return EXIT_BAD_CONFIG
        if "DYNO" in os.environ and config.state.url.startswith("sqlite:"):
            # a dyno's disk is wiped at least daily: alert state would be lost with it
            detail = "SQLite on a Heroku dyno is wiped daily; set MONITOR_STATE_URL"
            print(f"{'warn':<5} {'state':<32} {detail}")
        return EXIT_OK
    return asyncio.run(_check(config))


async def _check(config: Config) -> int:
    from monitor.app.once import check_all, format_check
    from monitor.app.plugins import build_components, build_sources
    from monitor.kernel.component import Context
    from monitor.kernel.exposition import Exposition
    from monitor.kernel.snapshot_store import SnapshotStore

    print(f"{'ok':<5} {'config':<32} valid")
    refused = _print_exposure(config)
    store = SnapshotStore()
    sources = build_sources(config)
    components = build_components(
        config, Context(store, Exposition(store), config.http, config.interval)
    )
    try:
        results = await check_all(sources, components)
    finally:
        for source in sources:
            await source.close()
    for result in results:
        for line in format_check(result):
            print(redact(line))
    return EXIT_OK if all(r.ok for r in results) and not refused else EXIT_FAILED


def _print_exposure(config: Config) -> bool:
    """Print what validates but cannot work, the open-endpoint warning or the web-dyno
    refusal; True if refused."""
    from monitor.app.config_warnings import config_warnings
    from monitor.kernel.http import exposure_warning, heroku_web_refusal

    for item, problem in config_warnings(config):
        print(redact(f"{'warn':<5} {item:<32} {problem}"))
    refusal = heroku_web_refusal(config.http, os.environ)
    if refusal:
        print(f"{'FAIL':<5} {'http':<32} {refusal}")
        return True
    warning = exposure_warning(config.http)
    if warning:
        print(f"{'warn':<5} {'http':<32} {warning}")
    return False


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.app.demo import run_demo

    return run_demo(listen=args.listen, duration=args.duration, replica=not args.no_replica)


def cmd_test_alert(args: argparse.Namespace) -> int:
    from alerts.service.oneshot import test_alert
    from monitor.app.plugins import alerting_section

    config = _load(args.config)
    return asyncio.run(test_alert(alerting_section(config), args.receiver, args.severity))


def cmd_silence(args: argparse.Namespace) -> int:
    from alerts.service import silence_cli
    from monitor.app.plugins import alerting_section

    config = _load(args.config)
    if args.silence_command == "add":
        return asyncio.run(
            silence_cli.add(
                alerting_section(config),
                args.match,
                args.match_re,
                args.duration,
                args.until,
                args.start,
                args.comment,
                args.created_by,
            )
        )
    if args.silence_command == "list":
        return asyncio.run(silence_cli.list_silences(alerting_section(config), args.all))
    return asyncio.run(silence_cli.expire(alerting_section(config), args.id))


def cmd_deploy(args: argparse.Namespace) -> int:
    from collectors.deploys import cli as deploy_cli

    config = _load(args.config)
    if args.deploy_command == "mark":
        app = (
            args.app
            or os.environ.get("HEROKU_APP_NAME")
            or (config.log_drain.default_app if config.log_drain else None)
        )
        return asyncio.run(
            deploy_cli.mark(config.state.url, app, args.version, args.commit, args.description)
        )
    return asyncio.run(deploy_cli.report(config.state.url, args.app, args.version))


COMMANDS = {
    "run": cmd_run,
    "once": cmd_once,
    "check": cmd_check,
    "test-alert": cmd_test_alert,
    "silence": cmd_silence,
    "deploy": cmd_deploy,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # before anything can log or fail: SENTRY_DSN, DATABASE_URL's password, tokens
    register_environment_secrets(os.environ)
    configure_logging()
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return EXIT_OK
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_FAILED
    except ConfigError as exc:  # found while assembling a component (e.g. the rule pack)
        return _report_config_error(exc)
    except Exception as exc:
        structlog.get_logger("monitor").error("fatal error", error=redact(repr(exc)))
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
