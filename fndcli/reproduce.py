"""The core of `fnd reproduce`: the chapter's experiments, run through fnd's own cores, each claim checked.

Every claim carries the chapter's section, the book's figure, fnd's figure on this machine,
a verdict and the rule behind it:

- **holds**: the claim is true here, by its rule;
- **differs**: a figure that depends on the machine (a speedup, an absolute time) is off
  from the book's by more than the stated factor: worth knowing, never a failure;
- **fails**: a claim that should hold on any machine (a result is correct, a stack
  explodes, the gradients match) does not: `fnd reproduce` exits 1.

Every timing claim (a speedup, the ladder's order) depends on the machine and on what else
runs on it, so it can only differ, never fail. Ctrl-C stops the run between or inside
sections; the claims of the sections that finished are kept (`interrupted`).

The book's printed figures are from fastbook ch. 17, first edition (Howard and Gugger 2020), as each claim cites it.
"""
import math
from dataclasses import dataclass, field

import pandas as pd
import torch

SECTIONS = ("ladder", "init", "backprop", "bridge", "train")
CLAIM_COLUMNS = ["section", "claim", "source", "book", "fnd", "verdict", "rule", "machine_dependent"]
SPEEDUP_FACTOR = 5.0  # a machine's speedup may differ from the book's by this factor and still "hold"

# The book's %timeit figures at m1 (5, 784) @ m2 (784, 10), in seconds.
BOOK_TIMES = {"loops": 1.15, "dot": 1.7e-3, "broadcast": 357e-6, "einsum": 68.7e-6, "torch": 14e-6}
BOOK_SOURCES = {"loops": "Matrix multiplication from scratch", "dot": "Matrix multiplication from scratch "
                "(elementwise arithmetic)", "broadcast": "Broadcasting", "einsum": "Einstein summation",
                "torch": "Matrix multiplication from scratch"}


@dataclass(frozen=True)
class ReproduceConfig:
    quick: bool = False          # the whole report in under a minute: pyperf in-process, fewer seeds and epochs
    sections: tuple = SECTIONS
    seed: int = 0

    @property
    def seeds(self):
        return 3 if self.quick else 12

    @property
    def epochs(self):
        return 5 if self.quick else 20


@dataclass
class ReproduceResult:
    claims: pd.DataFrame                         # CLAIM_COLUMNS
    frames: dict = field(default_factory=dict)   # file name -> DataFrame (each experiment's rows)
    figures: dict = field(default_factory=dict)  # file name -> function(path) writing a PNG
    text: dict = field(default_factory=dict)     # section -> a paragraph for the report
    suite: object = None                         # the ladder's pyperf suite
    interrupted: bool = False                    # Ctrl-C: the sections before it are kept


def _claim(section, claim, source, book, fnd, ok, rule, machine_dependent=False):
    verdict = "holds" if ok else ("differs" if machine_dependent else "fails")
    return {"section": section, "claim": claim, "source": source, "book": book, "fnd": fnd, "verdict": verdict,
            "rule": rule, "machine_dependent": machine_dependent}


def _t(seconds):
    from fndcli.report.tables import human_seconds

    return human_seconds(seconds)


def ladder(cfg, result):
    """The matmul ladder at the book's shape: correct, each rung faster, speedups against the book's."""
    from fndcli.bench.run import run_bench
    from fndcli.report.plots import ladder_times
    from fndcli.settings import BenchConfig

    bench = _finished(run_bench(BenchConfig(seed=cfg.seed, preset="quick" if cfg.quick else "default")))
    rows = bench.rows.set_index("impl")
    result.frames["ladder.csv"], result.suite = bench.rows, bench.suite
    result.figures["ladder.png"] = lambda p: ladder_times(rows["median_s"], BOOK_TIMES, p)
    claims = []
    correct = bool(rows["correct"].eq(True).all())
    claims.append(_claim("ladder", "All five implementations compute a @ b", "Matrix multiplication from scratch",
                         "the same result (by eye)", "all within float32 tolerance" if correct else
                         f"wrong: {', '.join(rows.index[~rows['correct'].eq(True)])}", correct,
                         "relative error against float64 a @ b at most 1e-4"))
    medians = rows["median_s"]
    chain = " > ".join(_t(medians[i]) for i in BOOK_TIMES)
    faster = all(medians[a] > medians[b] for a, b in zip(list(BOOK_TIMES), list(BOOK_TIMES)[1:]))
    claims.append(_claim("ladder", "Each rung of the ladder is faster than the one before",
                         "Matrix multiplication from scratch to Einstein summation",
                         " > ".join(_t(t) for t in BOOK_TIMES.values()), chain, faster,
                         "medians strictly decreasing, loops > dot > broadcast > einsum > @ (a timing: it can "
                         "differ on a machine, or under load)", machine_dependent=True))
    for impl in list(BOOK_TIMES)[1:]:
        book = BOOK_TIMES["loops"] / BOOK_TIMES[impl]
        ours = medians["loops"] / medians[impl]
        ok = 1 / SPEEDUP_FACTOR <= ours / book <= SPEEDUP_FACTOR
        label = "@" if impl == "torch" else impl
        claims.append(_claim("ladder", f"{label} is about {book:,.0f}x faster than the loops", BOOK_SOURCES[impl],
                             f"{book:,.0f}x", f"{ours:,.0f}x", ok, f"within {SPEEDUP_FACTOR:g}x of the book's ratio",
                             machine_dependent=True))
    ours = medians["loops"] / medians["torch"]
    claims.append(_claim("ladder", "@ is \"around 100,000 times faster\" than the three loops",
                         "Matrix multiplication from scratch", "around 100,000x (its figures: 82,000x)",
                         f"{ours:,.0f}x", 1e5 / 3 <= ours <= 3e5, "within 3x of 100,000", machine_dependent=True))
    result.text["ladder"] = (
        f"The chapter's five implementations at its shape, 5x784 @ 784x10 (float32, {bench.rows['threads'].iloc[0]} "
        f"thread(s), pyperf {'in-process' if cfg.quick else 'worker processes'}). Absolute times depend on the "
        f"machine, so the book's speedups are compared as ratios: here @ is {ours:,.0f}x the loops.")
    return claims


def _sweep(scheme, acts, seeds, seed, scale=0.1, depth=50):
    from fndcli.settings import SweepConfig
    from fndcli.init.sweep import run_sweep

    cfg = SweepConfig(schemes=(scheme,), acts=acts, seeds=seeds, seed=seed, scale=scale, depth=depth)
    return _finished(run_sweep(cfg)), cfg


def _finished(result):
    """A core's result, or KeyboardInterrupt again if Ctrl-C cut it short (the cores keep partial rows;
    a claim must not be judged on them)."""
    if result.interrupted:
        raise KeyboardInterrupt
    return result


def _first_layer(sweep, act):
    row = sweep.layers[(sweep.layers["act"] == act) & (sweep.layers["layer"] == 1)]
    return float(row["mean"].iloc[0]), float(row["std"].iloc[0])


def init(cfg, result):
    """The initialisation experiments: x = randn(200, 100) through 50 layers of 100x100 weights."""
    from fndcli.init.schemes import SCHEMES, log_m2_variance, make_act
    from fndcli.report.plots import std_per_layer

    src = "Defining and initializing a layer"
    runs = {"N(0, 1)": _sweep("normal", ("linear", "relu"), cfg.seeds, cfg.seed),
            "x 0.01": _sweep("scaled", ("linear", "relu"), cfg.seeds, cfg.seed, scale=0.01),
            "x 0.1": _sweep("scaled", ("linear", "relu"), cfg.seeds, cfg.seed, scale=0.1),
            "Kaiming": _sweep("kaiming-normal", ("linear", "relu"), cfg.seeds, cfg.seed)}
    layers = pd.concat([r.layers.assign(scheme=f"{name} ({r.layers['scheme'].iloc[0]})")
                        for name, (r, _) in runs.items()], ignore_index=True)
    result.frames["init-layers.csv"] = layers
    result.frames["init-summary.csv"] = pd.concat([r.summary.assign(name=name) for name, (r, _) in runs.items()],
                                                  ignore_index=True)
    result.figures["init-std.png"] = lambda p: std_per_layer(layers, p)
    summary = {name: r.summary.set_index("act") for name, (r, _) in runs.items()}

    def band(act, depth=1):  # 3 sd of one network's ln m2 after `depth` layers, as a relative factor on the std
        var = log_m2_variance(SCHEMES["kaiming-normal"], make_act(act), 100, depth, 200)
        return math.exp(1.5 * math.sqrt(var)) - 1  # std = sqrt(m2): half the log spread

    claims = []
    mean, std = _first_layer(runs["N(0, 1)"][0], "linear")
    claims.append(_claim("init", "With N(0, 1) weights the first layer's output has std about 10 (sqrt(100))", src,
                         "mean 0.0019, std 10.1058", f"mean {mean:.4f}, std {std:.4f}",
                         abs(std / 10 - 1) <= band("linear") and abs(mean) < 0.5,
                         f"std within {100 * band('linear'):.0f} % of 10 (3 sd of one network), mean near 0"))
    normal = summary["N(0, 1)"].loc["linear"]
    claims.append(_claim("init", "50 linear layers of N(0, 1) weights overflow to nan", src, "all nan",
                         f"overflow at layer {normal['overflow_layer']}", not pd.isna(normal["overflow_layer"]),
                         "a non-finite value by layer 50, in every seed (float32)"))
    small = summary["x 0.01"].loc["linear"]
    claims.append(_claim("init", "Weights x 0.01 collapse the activations to zeros", src, "all 0",
                         f"all zeros from layer {small['underflow_layer']}", not pd.isna(small["underflow_layer"]),
                         "a layer of exact zeros by layer 50 (float32)"))
    tenth = summary["x 0.1"].loc["linear"]
    claims.append(_claim("init", "Weights x 0.1 = 1/sqrt(n) keep a linear stack's scale", src,
                         "values of order 1; x.std() 0.7042",
                         f"last-layer std {math.sqrt(tenth['m2_last_geomean']):.4f}, {tenth['verdict']}",
                         tenth["verdict"] == "stable", "init-sweep's verdict: stable (within the finite-width band)"))
    mean, std = _first_layer(runs["x 0.1"][0], "linear")
    claims.append(_claim("init", "With 1/sqrt(n) the first layer has mean 0 and std 1", src, "mean -0.0050, std 1.0000",
                         f"mean {mean:.4f}, std {std:.4f}", abs(std - 1) <= band("linear") and abs(mean) < 0.05,
                         f"std within {100 * band('linear'):.0f} % of 1, mean near 0"))
    mean, std = _first_layer(runs["x 0.1"][0], "relu")
    pred_mean, pred_std = 1 / math.sqrt(2 * math.pi), math.sqrt(0.5 - 1 / (2 * math.pi))
    claims.append(_claim("init", "After a ReLU the mean is no longer 0 and the std shrinks", src,
                         "mean 0.3961, std 0.5783", f"mean {mean:.4f}, std {std:.4f}",
                         abs(mean / pred_mean - 1) <= band("relu") and abs(std / pred_std - 1) <= band("relu"),
                         f"mean and std within {100 * band('relu'):.0f} % of theory's {pred_mean:.3f}, {pred_std:.3f}"))
    relu = summary["x 0.1"].loc["relu"]
    claims.append(_claim("init", "With 1/sqrt(n) each ReLU halves the second moment: 50 layers collapse", src,
                         "values about 1e-8", f"log10 m2 {relu['growth_log10_per_layer']:+.3f} a layer, "
                         f"{relu['verdict']}", abs(relu["growth_log10_per_layer"] - math.log10(0.5)) < 0.03 and
                         relu["verdict"].startswith("vanishing"),
                         "fitted log10 m2 per layer within 0.03 of log10(1/2), verdict vanishing"))
    kaiming = summary["Kaiming"].loc["relu"]
    claims.append(_claim("init", "Kaiming's sqrt(2/n) keeps a ReLU stack's scale over 50 layers", src,
                         "values of order 0.1-0.6", f"last-layer std {math.sqrt(kaiming['m2_last_geomean']):.3f}, "
                         f"log10 m2 {kaiming['log10_m2_last']:+.2f} in [{kaiming['band_lo']:+.2f}, "
                         f"{kaiming['band_hi']:+.2f}], {kaiming['verdict']}", kaiming["verdict"] == "stable",
                         "init-sweep's verdict: stable, inside the finite-width band"))
    mean, std = _first_layer(runs["Kaiming"][0], "relu")
    pred_mean, pred_std = 1 / math.sqrt(math.pi), math.sqrt(1 - 1 / math.pi)
    claims.append(_claim("init", "With Kaiming the first layer + ReLU has mean about 0.56 and std about 0.83", src,
                         "mean 0.5661, std 0.8339", f"mean {mean:.4f}, std {std:.4f}",
                         abs(mean / pred_mean - 1) <= band("relu") and abs(std / pred_std - 1) <= band("relu"),
                         f"within {100 * band('relu'):.0f} % of theory's {pred_mean:.3f}, {pred_std:.3f}"))
    result.text["init"] = (
        f"x = randn(200, 100) through 50 layers of 100x100 weights, {cfg.seeds} seed(s) each, float32 as in the "
        "chapter. The book prints one seed; a single network of width 100 scatters around the theory by about "
        "+-0.7 decades of m2 at depth 50 (Hanin and Rolnick 2018), so fnd judges each claim against the theory's "
        "band for one network, not the book's exact digits.")
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
        _claim("backprop", "The hand-written gradients match autograd's", "Gradients and backward pass; "
               "Refactor the model", "checked by eye (the book compares with autograd)",
               f"{int(auto['passed'].sum())}/{len(auto)} tensors, largest relative error {worst:.1e}",
               bool(auto["passed"].all()), "every tensor within 1e-5 relative (float32 rounding)"),
        _claim("backprop", "Each hand-written layer agrees with finite differences", "Gradients and backward pass",
               "(not in the book)", f"{int(fd['passed'].sum())}/{len(fd)} checks pass", bool(fd["passed"].all()),
               "torch.autograd.gradcheck in float64, rtol 1e-3, atol 1e-5"),
    ]
    result.text["backprop"] = (
        "The chapter's model, 200x100 -> 50 -> 1 with MSE, forward and hand-written backward once, every gradient "
        "(input, activations, weights, biases) against torch autograd on the same values; then each layer and a "
        "small float64 copy of the model against finite differences.")
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
    diff = max((layer(x) - ref(x)).abs().max().item(), (xa.grad - xb.grad).abs().max().item(),
               (layer.weight.grad - ref.weight.grad).abs().max().item())
    std = layer.weight.std().item()
    result.frames["bridge.csv"] = pd.DataFrame([{"check": "MyRelu vs torch.relu", "max_abs_diff": 0.0 if relu_ok
                                                 else float("nan")},
                                                {"check": "LinearLayer vs nn.Linear", "max_abs_diff": diff}])
    claims = [
        _claim("bridge", "MyRelu, an autograd.Function, gives torch.relu's values and gradients", "Going to PyTorch",
               "(used, not printed)", "bitwise equal" if relu_ok else "differs", relu_ok,
               "torch.equal on the output and the input's gradient (float64)"),
        _claim("bridge", "LinearLayer, an nn.Module, computes what nn.Linear does", "Going to PyTorch",
               "(used, not printed)", f"max |diff| {diff:.1e}", diff < 1e-12,
               "forward, input and weight gradients within 1e-12 (float64)"),
        _claim("bridge", "LinearLayer's init is Kaiming: std sqrt(2/n_in)", "Going to PyTorch", "sqrt(2/100) = 0.141",
               f"{std:.3f}", abs(std / math.sqrt(2 / 100) - 1) < 0.05, "within 5 % (5,000 weights)"),
    ]
    result.text["bridge"] = ("The chapter's bridge to PyTorch: MyRelu as an autograd.Function and LinearLayer as an "
                             "nn.Module, each against torch's own on the same float64 values.")
    return claims


def train_section(cfg, result):
    """A short training run of the chapter's model: the loss falls, in lockstep with autograd."""
    from fndcli.report.plots import loss_curves
    from fndcli.settings import TrainConfig
    from fndcli.backprop.train import train

    run = _finished(train(TrainConfig(epochs=cfg.epochs, seed=cfg.seed)))
    history = run.history
    result.frames["train.csv"] = history
    result.figures["train-loss.png"] = lambda p: loss_curves(history, p)
    first, last = history["valid_loss"].iloc[0], history["valid_loss"].iloc[-1]
    mismatch = run.mismatch(1e-5)
    claims = [
        _claim("train", "Training the model makes the loss fall", "The forward and backward passes",
               "(the book stops at one step)", f"valid loss {first:.3f} -> {last:.3f} in {cfg.epochs} epochs",
               last < first / 2, "validation loss at most half its start"),
        _claim("train", "The hand-written model trains like its autograd twin", "Going to PyTorch",
               "(not in the book)", "agrees" if mismatch is None else f"{mismatch.where}: {mismatch.rel_diff:.1e}",
               mismatch is None, "every step's loss and the final parameters within 1e-5 relative"),
    ]
    result.text["train"] = (f"The chapter's 100 -> 50 -> 1 model trained by SGD written from scratch for {cfg.epochs} "
                            "epochs on a synthetic regression task, beside an nn.Linear twin trained by "
                            "torch.optim.SGD on the same batches.")
    return claims


RUNNERS = {"ladder": ladder, "init": init, "backprop": backprop, "bridge": bridge, "train": train_section}


def run_reproduce(cfg, on_section=lambda name: None):
    """Every section of cfg, in order; the claims and what the report needs. Ctrl-C keeps the
    sections that finished (`interrupted`); what a cut-short section had made is dropped."""
    result = ReproduceResult(pd.DataFrame(columns=CLAIM_COLUMNS))
    claims = []
    for section in cfg.sections:
        on_section(section)
        kept = (dict(result.frames), dict(result.figures), dict(result.text), result.suite)
        try:
            claims += RUNNERS[section](cfg, result)
        except KeyboardInterrupt:
            result.frames, result.figures, result.text, result.suite = kept
            result.interrupted = True
            break
    result.claims = pd.DataFrame.from_records(claims, columns=CLAIM_COLUMNS)
    return result
