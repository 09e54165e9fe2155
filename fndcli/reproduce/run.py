"""`fnd reproduce`'s sections run in order, each section's claims kept when a later one is cut short."""

import pandas as pd

from fndcli.reproduce.claims import CLAIM_COLUMNS, ReproduceResult
from fndcli.reproduce.initialisation import init
from fndcli.reproduce.sections import backprop, bridge, ladder, train_section

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
