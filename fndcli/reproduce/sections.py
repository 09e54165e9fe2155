"""The chapter's ladder, backward pass, bridge to PyTorch and training, each as claims (`claims.claim`)."""

import math

import pandas as pd
import torch

from fndcli.reproduce.claims import BOOK_SOURCES, BOOK_TIMES, SPEEDUP_FACTOR, claim, finished, human_time


def ladder(cfg, result):
    """The matmul ladder at the book's shape: correct, each rung faster, speedups against the book's."""
    from fndcli.bench.run import run_bench
    from fndcli.report.plots import ladder_times
    from fndcli.settings import BenchConfig

    bench = finished(run_bench(BenchConfig(seed=cfg.seed, preset="quick" if cfg.quick else "default")))
    rows = bench.rows.set_index("impl")
    result.frames["ladder.csv"], result.suite = bench.rows, bench.suite
    result.figures["ladder.png"] = lambda p: ladder_times(rows["median_s"], BOOK_TIMES, p)
    claims = []
    correct = bool(rows["correct"].eq(True).all())
    claims.append(
        claim(
            "ladder",
            "All five implementations compute a @ b",
            "Matrix multiplication from scratch",
            "the same result (by eye)",
            "all within float32 tolerance"
            if correct
            else f"wrong: {', '.join(rows.index[~rows['correct'].eq(True)])}",
            correct,
            "relative error against float64 a @ b at most 1e-4",
        )
    )
    medians = rows["median_s"]
    chain = " > ".join(human_time(medians[i]) for i in BOOK_TIMES)
    faster = all(medians[a] > medians[b] for a, b in zip(list(BOOK_TIMES), list(BOOK_TIMES)[1:]))
    claims.append(
        claim(
            "ladder",
            "Each rung of the ladder is faster than the one before",
            "Matrix multiplication from scratch to Einstein summation",
            " > ".join(human_time(t) for t in BOOK_TIMES.values()),
            chain,
            faster,
            "medians strictly decreasing, loops > dot > broadcast > einsum > @ (a timing: it can "
            "differ on a machine, or under load)",
            machine_dependent=True,
        )
    )
    for impl in list(BOOK_TIMES)[1:]:
        book = BOOK_TIMES["loops"] / BOOK_TIMES[impl]
        ours = medians["loops"] / medians[impl]
        ok = 1 / SPEEDUP_FACTOR <= ours / book <= SPEEDUP_FACTOR
        label = "@" if impl == "torch" else impl
        claims.append(
            claim(
                "ladder",
                f"{label} is about {book:,.0f}x faster than the loops",
                BOOK_SOURCES[impl],
                f"{book:,.0f}x",
                f"{ours:,.0f}x",
                ok,
                f"within {SPEEDUP_FACTOR:g}x of the book's ratio",
                machine_dependent=True,
            )
        )
    ours = medians["loops"] / medians["torch"]
    claims.append(
        claim(
            "ladder",
            '@ is "around 100,000 times faster" than the three loops',
            "Matrix multiplication from scratch",
            "around 100,000x (its figures: 82,000x)",
            f"{ours:,.0f}x",
            1e5 / 3 <= ours <= 3e5,
            "within 3x of 100,000",
            machine_dependent=True,
        )
    )
    result.text["ladder"] = (
        "The chapter's five implementations at its shape, 5x784 @ 784x10 (float32, "
        f"{bench.rows['threads'].iloc[0]} thread(s), pyperf "
        f"{'in-process' if cfg.quick else 'worker processes'}). Absolute times depend on the machine, so the "
        f"book's speedups are compared as ratios: here @ is {ours:,.0f}x the loops."
    )
    return claims


def backprop(cfg, result):
    """The hand-written forward and backward (the chapter's Lin, Relu, Mse) against autograd."""
    from fndcli.backprop.gradcheck import run_gradcheck
    from fndcli.settings import GradcheckConfig

    checks = run_gradcheck(GradcheckConfig(seed=cfg.seed))
    rows = checks.rows
    result.frames["backprop.csv"] = rows
    auto, fd = rows[rows["check"] == "autograd"], rows[rows["check"] == "finite-difference"]
    worst = auto["rel_err"].max()
    claims = [
        claim(
            "backprop",
            "The hand-written gradients match autograd's",
            "Gradients and backward pass; Refactor the model",
            "checked by eye (the book compares with autograd)",
            f"{int(auto['passed'].sum())}/{len(auto)} tensors, largest relative error {worst:.1e}",
            bool(auto["passed"].all()),
            "every tensor within 1e-5 relative (float32 rounding)",
        ),
        claim(
            "backprop",
            "Each hand-written layer agrees with finite differences",
            "Gradients and backward pass",
            "(not in the book)",
            f"{int(fd['passed'].sum())}/{len(fd)} checks pass",
            bool(fd["passed"].all()),
            "torch.autograd.gradcheck in float64, rtol 1e-3, atol 1e-5",
        ),
    ]
    result.text["backprop"] = (
        "The chapter's model, 200x100 -> 50 -> 1 with MSE, forward and hand-written backward once, every "
        "gradient (input, activations, weights, biases) against torch autograd on the same values; then each "
        "layer and a small float64 copy of the model against finite differences."
    )
    return claims


def bridge(cfg, result):
    """The chapter's MyRelu (autograd.Function) and LinearLayer (nn.Module) against torch's own."""
    from fndcli.backprop.bridge import LinearLayer, MyRelu

    gen = torch.Generator().manual_seed(cfg.seed)
    x = torch.randn(200, 100, generator=gen, dtype=torch.float64)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(200, 100, generator=gen, dtype=torch.float64)
    MyRelu.apply(a).backward(g)
    torch.relu(b).backward(g)
    relu_ok = torch.equal(a.grad, b.grad) and torch.equal(MyRelu.apply(x), torch.relu(x))
    layer = LinearLayer(100, 50, generator=gen, dtype=torch.float64)
    ref = torch.nn.Linear(100, 50, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(layer.weight)
        ref.bias.copy_(layer.bias)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    up = torch.randn(200, 50, generator=gen, dtype=torch.float64)
    layer(xa).backward(up)
    ref(xb).backward(up)
    diff = max(
        (layer(x) - ref(x)).abs().max().item(),
        (xa.grad - xb.grad).abs().max().item(),
        (layer.weight.grad - ref.weight.grad).abs().max().item(),
    )
    std = layer.weight.std().item()
    result.frames["bridge.csv"] = pd.DataFrame(
        [
            {"check": "MyRelu vs torch.relu", "max_abs_diff": 0.0 if relu_ok else float("nan")},
            {"check": "LinearLayer vs nn.Linear", "max_abs_diff": diff},
        ]
    )
    claims = [
        claim(
            "bridge",
            "MyRelu, an autograd.Function, gives torch.relu's values and gradients",
            "Going to PyTorch",
            "(used, not printed)",
            "bitwise equal" if relu_ok else "differs",
            relu_ok,
            "torch.equal on the output and the input's gradient (float64)",
        ),
        claim(
            "bridge",
            "LinearLayer, an nn.Module, computes what nn.Linear does",
            "Going to PyTorch",
            "(used, not printed)",
            f"max |diff| {diff:.1e}",
            diff < 1e-12,
            "forward, input and weight gradients within 1e-12 (float64)",
        ),
        claim(
            "bridge",
            "LinearLayer's init is Kaiming: std sqrt(2/n_in)",
            "Going to PyTorch",
            "sqrt(2/100) = 0.141",
            f"{std:.3f}",
            abs(std / math.sqrt(2 / 100) - 1) < 0.05,
            "within 5 % (5,000 weights)",
        ),
    ]
    result.text["bridge"] = (
        "The chapter's bridge to PyTorch: MyRelu as an autograd.Function and LinearLayer as an "
        "nn.Module, each against torch's own on the same float64 values."
    )
    return claims


def train_section(cfg, result):
    """A short training run of the chapter's model: the loss falls, in lockstep with autograd."""
    from fndcli.backprop.train import train
    from fndcli.report.plots import loss_curves
    from fndcli.settings import TrainConfig

    run = finished(train(TrainConfig(epochs=cfg.epochs, seed=cfg.seed)))
    history = run.history
    result.frames["train.csv"] = history
    result.figures["train-loss.png"] = lambda p: loss_curves(history, p)
    first, last = history["valid_loss"].iloc[0], history["valid_loss"].iloc[-1]
    mismatch = run.mismatch(1e-5)
    claims = [
        claim(
            "train",
            "Training the model makes the loss fall",
            "The forward and backward passes",
            "(the book stops at one step)",
            f"valid loss {first:.3f} -> {last:.3f} in {cfg.epochs} epochs",
            last < first / 2,
            "validation loss at most half its start",
        ),
        claim(
            "train",
            "The hand-written model trains like its autograd twin",
            "Going to PyTorch",
            "(not in the book)",
            "agrees" if mismatch is None else f"{mismatch.where}: {mismatch.rel_diff:.1e}",
            mismatch is None,
            "every step's loss and the final parameters within 1e-5 relative",
        ),
    ]
    result.text["train"] = (
        f"The chapter's 100 -> 50 -> 1 model trained by SGD written from scratch for {cfg.epochs} "
        "epochs on a synthetic regression task, beside an nn.Linear twin trained by "
        "torch's own SGD update on the same batches."
    )
    return claims
