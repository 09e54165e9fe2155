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

The book's printed figures are from fastbook ch. 17, first edition (Howard and Gugger 2020), as each claim
cites it."""
