"""The ``faceforge`` command: serve, token, migrate, version."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from kernel import __version__
from kernel.errors import StartupError


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="data directory (default: $FACEFORGE_HOME, else the "
                                       "per-user data directory)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceforge", description="FaceForge Core")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start Core (API + UI) with Hypercorn")
    _common(serve)
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; $FACEFORGE_BIND)")
    serve.add_argument("--port", type=int, help="port (default 43210; $FACEFORGE_PORT); "
                                                "0 picks a free port and writes ports.json")
    token = sub.add_parser("token", help="print the install token")
    _common(token)
    token.add_argument("--rotate", action="store_true",
                       help="replace the token (ends every UI session) and print the new one")
    migrate = sub.add_parser("migrate", help="apply pending database migrations and exit")
    _common(migrate)
    sub.add_parser("version", help="print the version")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from kernel.app import create_app
    from kernel.config import load_settings, write_ports
    from kernel.server import hypercorn_config, listen_socket, serve_app

    settings = load_settings(args.home, host=args.host, port=args.port)
    # Bound once, here, and served on as is: the port in ports.json cannot be taken by
    # another program before Hypercorn accepts on it.
    sock = listen_socket(settings.host, settings.port)
    try:
        port = int(sock.getsockname()[1])
        if settings.port == 0:
            write_ports(settings.paths, port)
        settings.port = port
        app = create_app(settings)
    except BaseException:
        sock.close()
        raise
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"FaceForge {__version__} on http://{host}:{port}/  (home: {settings.paths.home})",
          file=sys.stderr, flush=True)
    print("Sign in to the UI with the token printed by: faceforge token", file=sys.stderr,
          flush=True)
    try:
        asyncio.run(serve_app(app, hypercorn_config(settings.host, port), sock))
    except Exception as exc:
        cause = getattr(app.state.kernel, "startup_error", None)
        raise StartupError(str(cause) if cause else f"Core stopped: {exc}") from exc
    return 0


def _token(args: argparse.Namespace) -> int:
    from kernel.config import load_settings, rotate_token

    settings = load_settings(args.home)
    print(rotate_token(settings.paths.config_file) if args.rotate else settings.install_token)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from kernel.app import build_kernel, open_kernel
    from kernel.config import load_settings

    async def run() -> list[tuple[str, int, str]]:
        kernel = build_kernel(load_settings(args.home))
        applied = await open_kernel(kernel)
        await kernel.db.close()
        return applied

    applied = asyncio.run(run())
    for plugin, version, name in applied:
        print(f"applied {plugin} {version}: {name}")
    print(f"{len(applied)} migration(s) applied" if applied else "database is up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "version":
            print(f"faceforge {__version__}")
            return 0
        return {"serve": _serve, "token": _token, "migrate": _migrate}[args.command](args)
    except StartupError as exc:
        print(f"faceforge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
