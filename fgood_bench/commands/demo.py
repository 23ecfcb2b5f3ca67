"""``fgood-bench demo``: the whole pipeline on generated data."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from fgood_bench.commands.options import add_overwrite, device_name, positive_int


def add_parser(commands) -> None:
    demo = commands.add_parser(
        "demo", help="run the whole pipeline on generated data (a few minutes on a CPU)",
        description="Generate a small fine-grained dataset in CUB's native layout, a WebVision-layout outlier set "
        "with real ImageNet wnids and a coarse OOD set; then build-splits, build-ood-set, filter-outliers, train "
        "standard and mixupoe, evaluate and report. Prints where each artefact is.",
    )
    demo.add_argument("--workdir", type=Path, help="keep everything here (default: a temporary folder)")
    demo.add_argument("--epochs", type=positive_int, default=4, help="epochs of the small classifiers (default 4)")
    demo.add_argument("--device", type=device_name, default="auto",
                      help="auto (default: CUDA when present, as every command), cpu, cuda or cuda:N")
    demo.add_argument("--resume", action="store_true",
                      help="continue a demo stopped in --workdir: its finished stages are kept, the stopped one continues")
    add_overwrite(demo, "run again in a --workdir that holds an earlier demo (its files are replaced)")
    demo.set_defaults(run=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from fgood_bench.demo import DEMO_FOLDERS, run_demo
    from fgood_bench.errors import FgoodError
    from fgood_bench.interrupt import forget, keep
    from fgood_bench.outputs import clear_outputs, run_folder

    if args.resume and args.workdir is None:
        raise FgoodError("--resume continues a demo stopped in --workdir DIR: give --workdir")
    with tempfile.TemporaryDirectory(prefix="fgood-demo-") as scratch:
        workdir = args.workdir or Path(scratch)
        with run_folder(workdir, "demo", reuse=args.overwrite or args.resume,
                        hint="pass --overwrite to run the demo there again, or --resume to continue it"):
            if not args.resume:  # --resume wins over --overwrite, as train's does: the stopped demo continues
                clear_outputs(workdir, DEMO_FOLDERS)
            if args.workdir is not None:  # from here on a rerun is refused without --resume: say so on Ctrl-C
                keep(workdir, f"the demo's work folder {workdir} is kept")
            try:
                run_demo(workdir, progress=True, epochs=args.epochs, device=args.device, resume=args.resume)
            except KeyboardInterrupt:
                if args.workdir is None:
                    forget()  # the temporary folder goes: nothing is kept
                raise
        if args.workdir is None:
            print("(the demo ran in a temporary folder, now removed: pass --workdir DIR to keep its artefacts)")
    return 0
