"""`fnd train`'s other modes, each a run of its own kind: --lr-find (core: `fndcli.backprop.lrfind`) and
--widths (`fndcli.backprop.widths`)."""

from fndcli.cli.runs import progress


def lr_find_run(run, cfg, plot, quiet):
    """Sweep the rate as fastai's lr_find does, write the sweep (and its plot), and end the run."""
    from fndcli import userref
    from fndcli.backprop.lrfind import NUM_IT, lr_find

    with progress(run.con, quiet, NUM_IT, "sweeping the rate") as advance:
        found = lr_find(cfg, on_step=lambda i: advance(None))

    def write_files(files):
        files.write_csv(".csv", found.rows)
        if plot:
            from fndcli.report.train_plots import lr_find as lr_find_plot

            files.write("-lr-find.png", lambda p: lr_find_plot(found, p))

    run.finish(
        write_files,
        130 if found.interrupted else (1 if found.error else 0),
        {"hidden": list(cfg.hidden), "init": cfg.init},
        found.error,
        after=[found.user_traceback] if found.user_traceback else [],
        interrupted=found.interrupted,
        device=cfg.device,
        dtype=cfg.dtype,
        seed=cfg.seed,
        suggestion=found.suggestion,
        stop_lr=found.stop_lr,
        min_lr=found.min_lr,
        diverged_lr=found.diverged_lr,
        stop_step=found.stop_step,
        user_code_changed=userref.changes(),
        user_code_revisions=userref.revisions([cfg.model]),
    )


def widths_run(run, cfg, widths, param, seeds, plot, quiet):
    """mup's coordinate check: one model per width and seed, a few steps each; write the verdicts, the
    coordinates (and their plot), and end the run."""
    from fndcli.backprop.widths import STEPS, sweep

    with progress(run.con, quiet, len(widths) * seeds, "one model per width") as advance:
        found = sweep(cfg, widths, param, seeds, on_model=lambda: advance(None))

    def write_files(files):
        files.write_csv(".csv", found.verdicts)
        files.write_csv("-coords.csv", found.coords)
        if plot:
            from fndcli.report.train_plots import coord_check

            files.write("-widths.png", lambda p: coord_check(found.coords, param, p))

    run.finish(
        write_files,
        130 if found.interrupted else (1 if found.error else 0),
        {"hidden": list(cfg.hidden), "init": cfg.init, "widths": list(widths)},
        found.error,
        interrupted=found.interrupted,
        device=cfg.device,
        dtype=cfg.dtype,
        seed=cfg.seed,
        widths=list(widths),
        steps=STEPS,
    )
