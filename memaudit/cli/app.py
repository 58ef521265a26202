"""The Typer application, its global options and the error-to-exit-code boundary."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click
import typer

from memaudit import __version__
from memaudit.cli.console import stderr, stdout
from memaudit.errors import ExitCode, MemauditError

app = typer.Typer(
    name="memaudit",
    help="Audit fine-tuned Stable Diffusion models for memorized training images.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
_debug = {"enabled": False}


def _version(value: bool) -> None:
    if value:
        stdout.print(f"memaudit {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _global_options(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: bool = typer.Option(False, "--debug", help="Show Python tracebacks for errors."),
) -> None:
    _debug["enabled"] = debug


def _register_commands() -> None:
    from memaudit.cli import (
        attest_commands,
        data_commands,
        demo_command,
        finetune_command,
        inspect_command,
        phantoms_command,
        policy_commands,
        reid_commands,
        remediate_commands,
        report_commands,
        scan_command,
        weights_commands,
    )

    app.command("demo")(demo_command.demo)
    app.command("inspect")(inspect_command.inspect)
    app.command("scan")(scan_command.scan)
    app.command("finetune")(finetune_command.finetune)
    app.command("phantoms")(phantoms_command.phantoms)
    app.command("remediate")(remediate_commands.remediate)
    app.command("worker")(remediate_commands.worker)
    app.command("keygen")(attest_commands.keygen)
    app.command("verify")(attest_commands.verify)
    app.add_typer(report_commands.app, name="report")
    app.add_typer(policy_commands.app, name="policy")
    app.add_typer(data_commands.app, name="data")
    app.add_typer(reid_commands.app, name="reid")
    app.add_typer(weights_commands.app, name="weights")


_register_commands()

INTERRUPTED = "interrupted; rerun the same command to resume"


class Interrupted(BaseException):
    """Ctrl-C (SIGINT) while a command runs. Typer turns a KeyboardInterrupt into exit 130 without a
    word, so SIGINT raises this instead; a BaseException, like KeyboardInterrupt, so that no handler of
    errors on the way catches it, and cleanup (``finally``) still runs."""


@contextmanager
def _sigint_raises_interrupted() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return

    def interrupt(signum, frame) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (no sys.exit), for tests and embedding."""
    command = typer.main.get_command(app)
    try:
        with _sigint_raises_interrupted():
            result = command.main(args=argv, prog_name="memaudit", standalone_mode=False)
    except MemauditError as error:
        if _debug["enabled"]:
            traceback.print_exc()
        stderr.print(f"memaudit: error: {error}", markup=False)
        return ExitCode.ERROR
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as error:  # usage errors: bad option, missing argument, no command
        show = getattr(error, "show", None)
        if show is not None:
            show()
        else:
            stderr.print(f"memaudit: error: {error.format_message()}", markup=False)
        return ExitCode.ERROR
    except (Interrupted, KeyboardInterrupt, typer.Abort, click.exceptions.Abort):
        # The scan's finished work stays in its work folder, and nothing half-written is published.
        stderr.print(f"memaudit: error: {INTERRUPTED}", markup=False)
        return ExitCode.ERROR
    except OSError as error:  # the machine, not memaudit: a full disk, a folder that cannot be written
        if _debug["enabled"]:
            traceback.print_exc()
        where = f"{error.filename}: " if error.filename else ""
        stderr.print(f"memaudit: error: {where}{error.strerror or error}", markup=False)
        return ExitCode.ERROR
    except Exception as error:  # a bug, not a user error: still exit 2, never 0 or 1
        if _debug["enabled"]:
            traceback.print_exc()
        stderr.print(
            f"memaudit: internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)",
            markup=False,
        )
        return ExitCode.ERROR
    return result if isinstance(result, int) else ExitCode.OK


def main() -> None:
    sys.exit(run(sys.argv[1:]))
