"""`fnd reproduce`: the chapter's claims checked in one report (core: `fndcli.reproduce`)."""
import os
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from fndcli.cli.app import command
from fndcli.cli.options import OutOption, QuietOption, SeedOption, choices, config_option
from fndcli.cli.runs import console, effective_config, out_dir, print_paths, progress

SectionName = choices("SectionName", ["ladder", "init", "backprop", "bridge", "train"])


@command("reproduce", "Check the chapter's claims on this machine, in one report.")
def reproduce(
    ctx: typer.Context,
    quick: Annotated[bool, typer.Option(
        "--quick", help="The whole report in under a minute, for CI: pyperf in-process, 3 seeds, 5 epochs.")] = False,
    section: Annotated[Optional[list[SectionName]], typer.Option(
        "--section", help="Only these sections; repeatable. Default: all five.")] = None,
    html: Annotated[bool, typer.Option("--html", help="Also write report.html, self-contained (images inlined).")] = False,
    seed: SeedOption = 0,
    config: config_option("reproduce") = None,
    out: OutOption = Path("results"),
    quiet: QuietOption = False,
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
    from fndcli.reproduce import SECTIONS, ReproduceConfig

    sections = tuple(dict.fromkeys(s.value for s in section)) if section else SECTIONS
    cfg = ReproduceConfig(quick=quick, sections=tuple(s for s in SECTIONS if s in sections), seed=seed)
    out = out_dir(out)

    from fndcli.reproduce import report_html, report_markdown, run_reproduce
    from fndcli.runs.files import RunFiles, run_metadata, utc_now

    con = console()
    started = utc_now()
    with progress(con, quiet, len(cfg.sections), "reproducing") as advance:
        result = run_reproduce(cfg, on_section=lambda name: advance())
    fails = result.claims[result.claims["verdict"] == "fails"]
    code = 130 if result.interrupted else (1 if len(fails) else 0)
    stem = RunFiles(out, "reproduce", started).stem
    final = out / stem
    with tempfile.TemporaryDirectory(prefix=f".{stem}.", dir=out) as tmp:  # the directory appears whole, or not at all
        work = Path(tmp) / stem
        work.mkdir()
        for name, frame in result.frames.items():
            frame.to_csv(work / name, index=False)
        result.claims.to_csv(work / "claims.csv", index=False)
        if result.suite is not None:
            result.suite.dump(str(work / "ladder.pyperf.json"), replace=True)
        for name, write in result.figures.items():
            write(work / name)
        facts = _facts(started, cfg)
        if result.interrupted:
            facts.append(("status", f"interrupted (Ctrl-C): {len(result.text)} of {len(cfg.sections)} section(s) "
                                    "finished, their claims kept"))
        markdown = report_markdown(result, facts, result.figures)
        (work / "report.md").write_text(markdown)
        if html:
            images = {name: (work / name).read_bytes() for name in result.figures}
            (work / "report.html").write_text(report_html(markdown, images))
        files = sorted(p.name for p in work.iterdir())
        meta = run_metadata("reproduce", effective_config(ctx, section=list(cfg.sections)), started,
                            files=files, counts=result.claims["verdict"].value_counts().to_dict(),
                            status="interrupted" if result.interrupted else "complete", exit_code=code)
        import json

        (work / "reproduce.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        os.chmod(work, 0o777 & ~_umask())
        os.rename(work, final)  # fails rather than replace an existing directory
    if not quiet:
        from fndcli.report.tables import claims_table, claims_title

        con.print(claims_table(result.claims, claims_title(len(result.claims))))
        for row in fails.itertuples():
            con.print(f"[bold red]fails:[/] {row.claim}: {row.fnd} ({row.rule})")
        if result.interrupted:
            con.print("[yellow]interrupted: kept the sections that finished[/]")
    print_paths(con, [final / "report.md", *([final / "report.html"] if html else [])])
    raise typer.Exit(code)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _facts(started, cfg):
    import platform

    import torch

    import fndcli
    from fndcli.runs.files import cpu_model

    return [("run", f"{started:%Y-%m-%d %H:%M} UTC, {'--quick' if cfg.quick else 'the default preset'}, "
                    f"seed {cfg.seed}"),
            ("machine", f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"),
            ("versions", f"fnd {fndcli.__version__}, torch {torch.__version__}, Python {platform.python_version()}"),
            ("the book", "fastbook chapter 17, \"A neural net from the foundations\" (first edition's printed figures)")]
