"""`fnd reproduce`: the chapter's claims checked in one report (core: `fndcli.reproduce`)."""

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cli.app import command
from fndcli.cli.options import (
    DbOption,
    NoHistoryOption,
    OutOption,
    QuietOption,
    SeedOption,
    choices,
    config_option,
)
from fndcli.cli.runs import Run, error_line, progress

SectionName = choices("SectionName", ["ladder", "init", "backprop", "bridge", "train"])


@command("reproduce", "Check the chapter's claims on this machine, in one report.")
def reproduce(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="The whole report in under a minute, for CI: timed in fnd's own process, 3 seeds, 5 epochs.",
        ),
    ] = False,
    section: Annotated[
        Optional[list[SectionName]],
        typer.Option("--section", help="Only these sections; repeatable. Default: all five."),
    ] = None,
    html: Annotated[
        bool, typer.Option("--html", help="Also write report.html, self-contained (images inlined).")
    ] = False,
    seed: SeedOption = 0,
    config: config_option("reproduce") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
    db: DbOption = None,
    no_history: NoHistoryOption = False,
):
    """Run the chapter's experiments and check each of its claims on this machine, in one report.

    The matmul ladder at the book's shape, the initialisation experiments, the hand-written
    backward against autograd, the bridge to PyTorch, a short training run. Writes
    DIR/reproduce-STAMP/ with report.md, its figures and every experiment's CSV. Exit 1 if a
    claim that should hold on any machine fails; figures that depend on the machine only
    "differ".

    Examples:

    \b
        fnd reproduce --quick
        fnd reproduce --section init --section backprop --html
    """
    from fndcli.reproduce.claims import SECTIONS, ReproduceConfig

    sections = tuple(dict.fromkeys(s.value for s in section)) if section else SECTIONS
    cfg = ReproduceConfig(quick=quick, sections=tuple(s for s in SECTIONS if s in sections), seed=seed)
    run = Run(ctx, out, quiet)

    from fndcli.reproduce.run import run_reproduce

    with progress(run.con, quiet, len(cfg.sections), "reproducing") as advance:
        result = run_reproduce(cfg, on_section=lambda name: advance())
    code = 130 if result.interrupted else (1 if (result.claims["verdict"] == "fails").any() else 0)
    try:
        final = _write(run, cfg, result, html, code)
    except OSError as e:  # a full disk: the run's directory appears whole or not at all
        error_line(f"cannot write {e.filename or run.out}: [Errno {e.errno}] {e.strerror or e}; nothing kept")
        raise typer.Exit(2)
    run.end(
        [final / "report.md", *([final / "report.html"] if html else [])],
        code,
        sidecar=final / "reproduce.json",
    )


def _write(run, cfg, result, html, code):
    """DIR/reproduce-<stamp>/: every experiment's CSV, the claims, the figures, report.md (and .html), the
    sidecar. Written in a hidden temporary directory and renamed into place: it appears whole, or not at
    all."""
    from fndcli.report.markdown import report_html, report_markdown
    from fndcli.runs.files import RunFiles

    stem = RunFiles(run.out, "reproduce", run.started).stem
    with tempfile.TemporaryDirectory(prefix=f".{stem}.", dir=run.out) as tmp:
        work = Path(tmp) / stem
        work.mkdir()
        for name, frame in result.frames.items():
            frame.to_csv(work / name, index=False)
        result.claims.to_csv(work / "claims.csv", index=False)
        if result.suite is not None:
            result.suite.dump(str(work / "ladder.pyperf.json"), replace=True)
        for name, write in result.figures.items():
            write(work / name)
        facts = _facts(run.started, cfg)
        if result.interrupted:
            facts.append(
                (
                    "status",
                    f"interrupted (Ctrl-C): {len(result.text)} of {len(cfg.sections)} section(s) "
                    "finished, their claims kept",
                )
            )
        markdown = report_markdown(result, facts, result.figures)
        (work / "report.md").write_text(markdown)
        if html:
            images = {name: (work / name).read_bytes() for name in result.figures}
            (work / "report.html").write_text(report_html(markdown, images))
        meta = run.sidecar(
            sorted(p.name for p in work.iterdir()),
            code,
            {"section": list(cfg.sections)},
            interrupted=result.interrupted,
            counts=result.claims["verdict"].value_counts().to_dict(),
        )
        (work / "reproduce.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        os.chmod(work, 0o777 & ~_umask())
        os.rename(work, run.out / stem)  # fails rather than replace an existing directory
    return run.out / stem


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _facts(started, cfg):
    import platform

    import torch

    import fndcli
    from fndcli.machine import cpu_model

    return [
        (
            "run",
            f"{started:%Y-%m-%d %H:%M} UTC, {'--quick' if cfg.quick else 'the default preset'}, "
            f"seed {cfg.seed}",
        ),
        ("machine", f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"),
        (
            "versions",
            f"fnd {fndcli.__version__}, torch {torch.__version__}, Python {platform.python_version()}",
        ),
        (
            "the book",
            'fastbook chapter 17, "A neural net from the foundations" (first edition\'s printed figures)',
        ),
    ]
