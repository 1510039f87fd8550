"""Alignment Studio.

python launch.py                                  the studio in a browser (http://127.0.0.1:7860)
python launch.py --add-user bob --role labeler --users users.txt     an account (asks for a password)
python launch.py --share --users users.txt        a share link; each user logs in with their role
python launch.py --share --auth alice:secret      a share link, one operator login
python launch.py --preset presets/sft.yaml --headless [--set train.max_steps=10]
python launch.py --resume runs/<run_id> --headless
python launch.py --export runs/<run_id> --to exported/   the model merged, tokenizer, model card, GGUF
python launch.py --executor ray --ray-address http://head:8265 [--preset P --headless]   runs on a Ray cluster
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    """`user:pass`, or a file with one `user:pass` per line."""
    if value is None:
        return None
    path = Path(value)
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [value]
    pairs = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            where = f"{path}:{n}" if path.is_file() else "--auth"
            raise SystemExit(f"error: {where}: expected user:password, got {line!r}")
        pairs.append((user, password))
    if not pairs:
        raise SystemExit(f"error: --auth {value}: no user:password entries found")
    return pairs


def ctx_preset_name(preset: str, presets_dir: str) -> str | None:
    """`--preset presets/dpo.yaml` in UI mode -> `dpo.yaml`, the name the Train tab preselects."""
    path, root = Path(preset).resolve(), Path(presets_dir).resolve()
    if not path.is_file() or not path.is_relative_to(root):
        return None
    return str(path.relative_to(root))


def build_parser() -> argparse.ArgumentParser:
    from backends.worker.gguf import GGUF_TYPES  # no torch: the export's own choices

    p = argparse.ArgumentParser(
        description="Alignment Studio", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--preset", help="a YAML preset (with --headless: run it; else: preselect it)")
    p.add_argument("--headless", action="store_true", help="run --preset (or --resume) without the UI")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset field, e.g. --set train.max_steps=10 (repeatable)",
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint (headless)")
    p.add_argument("--export", metavar="RUN_DIR", help="a finished run's model as a plain folder (with --to)")
    p.add_argument("--to", metavar="DIR", help="with --export: the folder to write")
    p.add_argument(
        "--gguf",
        default="auto",
        choices=["auto", "none", *GGUF_TYPES],
        help="with --export: model.gguf as f32 / f16 / bf16 / q8_0, none, or auto (f16 when "
        "llama.cpp's converter is installed)",
    )
    p.add_argument(
        "--push-to-hub", metavar="USER/NAME", help="with --export: then upload the folder to the Hub"
    )
    p.add_argument("--runs-dir", default=os.environ.get("ALIGNMENT_STUDIO_RUNS", str(ROOT / "runs")))
    p.add_argument("--presets-dir", default=str(ROOT / "presets"))
    p.add_argument(
        "--data-dir",
        default=os.environ.get("ALIGNMENT_STUDIO_DATA", str(ROOT / "studio_data")),
        help="labels (SQLite) and exported datasets",
    )
    p.add_argument(
        "--allow-path",
        action="append",
        default=[],
        metavar="DIR",
        help="another folder users may open data from (repeatable); nothing else is served",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--share", action="store_true", help="create a public Gradio link (needs accounts)")
    p.add_argument("--auth", help="user:password, or a file with one user:password per line (operators)")
    p.add_argument(
        "--users",
        metavar="FILE",
        help="accounts with roles (labeler / operator) and hashed passwords; see --add-user",
    )
    p.add_argument(
        "--add-user",
        metavar="NAME",
        help="add or update NAME in the --users file (the password is read from the terminal or stdin), then exit",
    )
    p.add_argument("--role", choices=["labeler", "operator"], default="labeler", help="with --add-user")
    p.add_argument(
        "--reward-module",
        action="append",
        default=[],
        metavar="MODULE[:FN]",
        help="a reward function (module:callable), or every public function a module defines (it is "
        "imported at start-up; names it imported are not registered), that the web may choose as a "
        "`function` reward or judge (repeatable; none by default; the start-up log lists them)",
    )
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default=os.environ.get("ALIGNMENT_STUDIO_EXECUTOR", "local"),
        help="where runs go: local (detached processes on this machine, queued) or ray (a job per "
        "run on a Ray cluster; pip install -e .[cluster]; see docs/SCALING.md)",
    )
    p.add_argument(
        "--ray-address",
        default=os.environ.get("RAY_ADDRESS"),
        metavar="ADDR",
        help="the Ray dashboard's address for --executor ray, e.g. http://head:8265 (default: $RAY_ADDRESS)",
    )
    p.add_argument(
        "--stop-grace",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="with --executor ray: how long a run has to save and stop after Stop before its job is stopped",
    )
    p.add_argument(
        "--ray-python",
        metavar="PATH",
        help="with --executor ray: the Python on the Ray nodes that has this project installed "
        "(default: the same path as this one)",
    )
    p.add_argument(
        "--ray-code-dir",
        metavar="DIR",
        help="with --executor ray: this repository's folder on the Ray nodes (default: the same path as here)",
    )
    p.add_argument(
        "--reward-modules-file",
        metavar="FILE",
        help="the same as --reward-module, one per line (# comments)",
    )
    return p


def reward_functions(args: argparse.Namespace) -> list[str]:
    items = list(args.reward_module)
    if args.reward_modules_file:
        for line in Path(args.reward_modules_file).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                items.append(line)
    return items


def executor_config(args: argparse.Namespace) -> Any:
    """The executor the flags name, checked (a Ray cluster is reached and sees the runs folder);
    SystemExit with the reason otherwise, before any run exists."""
    from backends.core.runs.executor_kinds import make_executor
    from backends.core.runs.executors import ExecutorConfig, ExecutorError
    from backends.core.runs.launcher import Launcher

    try:
        config = ExecutorConfig(
            args.executor, args.ray_address, args.stop_grace, args.ray_python, args.ray_code_dir
        )
        if config.kind != "local":
            print(make_executor(config, Launcher(args.runs_dir)).check(), file=sys.stderr)
    except ExecutorError as e:
        raise SystemExit(f"error: {e}") from None
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.add_user:
        from backends.core.access.accounts import add_user_command

        return add_user_command(Path(args.users) if args.users else None, args.add_user, args.role)
    if args.export:
        from backends.worker.export import main as export_main

        extra = ["--gguf", args.gguf] + (["--push-to-hub", args.push_to_hub] if args.push_to_hub else [])
        return export_main([args.export, "--to", args.to or "", *extra])
    if args.headless:
        return run_headless(args)
    if args.share and not (args.auth or args.users):
        print(
            "error: --share makes the studio reachable by anyone who has the link, and it can "
            "start processes on this machine; add accounts: --users FILE (see --add-user) or "
            "--auth user:password",
            file=sys.stderr,
        )
        return 2
    auth = parse_auth(args.auth)
    from backends.core.access.accounts import AccountError, Accounts
    from backends.core.pipelines.policy import RewardFunctions
    from backends.core.spec.config import ConfigError

    try:
        accounts = Accounts(Path(args.users) if args.users else None, auth) if (auth or args.users) else None
        functions = RewardFunctions.parse(reward_functions(args))
    except (AccountError, ConfigError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if functions.names:  # a module registers the functions it defines, never what it imported
        print(f"reward functions the web may name: {functions.describe()}", flush=True)
    if accounts is not None and not len(accounts):
        print(f"error: {args.users} has no accounts; add one with --add-user", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from studio.app import launch_app
    from studio.context import StudioContext

    initial = None
    if args.preset:
        initial = ctx_preset_name(args.preset, args.presets_dir)
        if initial is None:
            print(
                f"error: --preset {args.preset}: the Train tab offers the presets under {args.presets_dir}; "
                "copy the file there or pass --presets-dir",
                file=sys.stderr,
            )
            return 2
    ctx = StudioContext.create(
        runs_dir=args.runs_dir,
        presets_dir=args.presets_dir,
        data_dir=args.data_dir,
        allow_paths=args.allow_path,
        reward_functions=functions,
        accounts=accounts,
        executor=executor_config(args),
    )
    from backends.core.runs.forkserver import warm_server

    # runs the studio starts fork from a warm server instead of importing torch each
    with warm_server(ctx.runs_dir, ctx.launcher.python):
        launch_app(ctx, host=args.host, port=args.port, share=args.share, initial_preset=initial)
    return 0


def run_headless(args: argparse.Namespace) -> int:
    from backends.core.pipelines.headless import prepare_resume
    from backends.core.pipelines.headless import run_headless as run
    from backends.core.spec.config import ConfigError, load_preset

    try:
        if args.resume:
            cfg = None
            if args.preset:
                cfg = load_preset(args.preset, args.overrides)
            elif args.overrides:
                from backends.core.runs.rundir import RunDir
                from backends.core.spec.config import apply_overrides, read_preset, validate_config

                cfg_path = RunDir(args.resume).config_path
                cfg = validate_config(
                    apply_overrides(read_preset(cfg_path), args.overrides), f"{cfg_path} with --set"
                )
            cfg, old = prepare_resume(args.resume, cfg)
            return run(cfg, args.runs_dir, resume_of=old, executor=executor_config(args))
        if not args.preset:
            print("error: --headless needs --preset P (or --resume RUN_DIR)", file=sys.stderr)
            return 2
        from backends.core.pipelines.pipeline import is_pipeline, load_pipeline
        from backends.core.spec.config import read_preset

        if is_pipeline(read_preset(args.preset)):
            from backends.core.pipelines.headless_pipeline import run_pipeline_headless

            raw = load_pipeline(args.preset, args.overrides)
            return run_pipeline_headless(raw, args.runs_dir, executor_config(args))
        cfg = load_preset(args.preset, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run(cfg, args.runs_dir, executor=executor_config(args))


if __name__ == "__main__":
    sys.exit(main())
