"""`fnd train --lr-find`: fastai's learning-rate finder, on fnd's hand-written model and SGD.

fastai's `lr_find` (fastai.callback.schedule, LRFinder): from START_LR to END_LR exponentially over NUM_IT
steps, step i at lr = START_LR * (END_LR / START_LR) ** (i / NUM_IT), each on the next training batch;
the loss smoothed as fastai's Recorder does (`findings.smoothed`: beta 0.98, bias-corrected); stopped when the
smoothed loss passes STOP_DIV times its best, or is not finite, or after NUM_IT steps. The suggestion is
fastai's default, `valley`: over the smoothed losses with the first NUM_IT // 10 and the last 5 steps left
out, the longest stretch of decreasing loss (the longest decreasing subsequence, by its ends), and the rate
two thirds of the way along it (`idx = start + int(len / 3) + int(len / 6)`). The model is a fresh one,
trained only by the sweep: fnd's run is the sweep.

Where it diverged: the smoothed loss lags (an average over about 1 / (1 - beta) = 50 steps), so fastai's stop
comes 2-3x past the rate where the loss turned (measured: docs/train.md). `diverged_lr` is read from the
batch losses themselves: the first rate whose batch loss passes DIVERGE_FACTOR times the lowest before it.
"""

import math
from dataclasses import dataclass, replace

import pandas as pd
import torch

from fndcli.backprop.findings import DIVERGE_FACTOR, smoothed
from fndcli.backprop.train import ManualSGD, build_models, make_data
from fndcli.kinds import TRAIN_LR_FIND
from fndcli.memory import stops
from fndcli.userref import UserCodeError

START_LR, END_LR, NUM_IT = 1e-7, 10.0, 100  # fastai's lr_find defaults
SKIP_START, SKIP_END = NUM_IT // 10, 5  # what lr_find leaves out before suggesting
COLUMNS = TRAIN_LR_FIND.written()


@dataclass
class LRFind:
    rows: pd.DataFrame  # step, lr, loss, smoothed
    suggestion: float | None  # valley's rate; None when the sweep stopped too soon to suggest one
    stop_lr: float | None  # the rate of the step whose smoothed loss passed DIVERGE_FACTOR x its best
    stop_step: int | None
    min_lr: float | None  # the rate of the lowest smoothed loss
    diverged_lr: float | None  # the first rate whose batch loss passed DIVERGE_FACTOR x the lowest before it
    interrupted: bool = False
    error: str | None = None
    user_traceback: str = ""


def valley(losses):
    """fastai's valley: the index two thirds of the way along the longest decreasing stretch of `losses`,
    measured from one before the stretch: -1 for a stretch from the first loss, where fastai's index of a
    stretch of two, -1, would read the last rate; here it is the first."""
    n = len(losses)
    lds, max_start, max_end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end, max_start = i, i - lds[i]
    sections = (max_end - max_start) / 3
    return max(0, max_start + int(sections) + int(sections / 2))


def rate(i):
    return START_LR * (END_LR / START_LR) ** (i / NUM_IT)


def lr_find(cfg, on_step=lambda i: None):
    """The sweep on cfg's model and data, its batches drawn as `train` draws them (reshuffled each pass)."""
    x_tr, y_tr, _, _ = (t.to(cfg.device) for t in make_data(cfg))
    rows, error, trace = [], None, ""
    with stops(lambda: f"at step {len(rows)}") as stopped:
        try:
            model, _ = build_models(replace(cfg, check_autograd=False), x_tr)  # no twin: the sweep is fnd's
            opt = ManualSGD([p for _, p in model.named_params()], START_LR, cfg.momentum)
            shuffle, order, at = torch.Generator().manual_seed(cfg.seed + 2), [], 0
            best, losses = math.inf, []
            for i in range(NUM_IT):
                if at + cfg.batch_size > len(order):
                    order, at = torch.randperm(len(x_tr), generator=shuffle).to(cfg.device), 0
                idx = order[at : at + cfg.batch_size]
                at += cfg.batch_size
                opt.lr = rate(i)
                model.zero_grad()
                loss = model.loss(x_tr[idx], y_tr[idx]).item()
                model.backward(input_grad=False)
                opt.step()
                losses.append(loss)
                smooth = float(smoothed(losses)[-1])
                rows.append((i, opt.lr, loss, smooth))
                on_step(i)
                if not math.isfinite(smooth) or smooth > DIVERGE_FACTOR * best:
                    break
                best = min(best, smooth)
        except UserCodeError as e:
            error, trace = f"at step {len(rows)}, {e}", e.traceback
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    return LRFind(frame, *_read(frame), stopped.interrupted, error or stopped.error, trace)


def _read(frame):
    """(suggestion, stop lr, stop step, lr of the lowest smoothed loss, lr where the batch loss diverged)."""
    smooth = frame["smoothed"].to_numpy(dtype=float)
    last = len(frame) - 1
    best_before = pd.Series(smooth).cummin().shift(1).to_numpy()
    stopped = last >= 0 and (
        not math.isfinite(smooth[last]) or smooth[last] > DIVERGE_FACTOR * best_before[last]
    )
    kept = frame.iloc[SKIP_START : len(frame) - SKIP_END]
    suggestion = float(kept["lr"].iloc[valley(kept["smoothed"].tolist())]) if len(kept) > 1 else None
    loss = frame["loss"].to_numpy(dtype=float)
    lowest = pd.Series(loss).cummin().shift(1).to_numpy()
    over = [
        i for i in range(1, len(loss)) if not math.isfinite(loss[i]) or loss[i] > DIVERGE_FACTOR * lowest[i]
    ]
    finite = frame[frame["smoothed"].map(math.isfinite)]
    min_lr = float(finite.loc[finite["smoothed"].idxmin(), "lr"]) if len(finite) else None
    return (
        suggestion,
        float(frame["lr"].iloc[last]) if stopped else None,
        int(frame["step"].iloc[last]) if stopped else None,
        min_lr,
        float(frame["lr"].iloc[over[0]]) if over else None,
    )
