"""The chapter's model with a dead first layer: its bias starts at -20, so every unit of the ReLU after it is
zero on every input, passes no gradient back, and never comes back (the layer is dead from step 0).

    fnd train --model examples/dead_model.py:DeadModel --stats 5 --seeds 3

fnd train --stats names it: "dead at relu1, step 0: 100% zeros from step 0 and after".
"""

import torch
from chapter_model import Model


class DeadModel(Model):
    """Model(w1, b1, w2, b2) with b1 shifted by -20 in place, before any step."""

    def __init__(self, w1, b1, w2, b2):
        with torch.no_grad():  # fnd's tensors (and the twin's leaves) are the model's parameters: shift them
            b1.sub_(20.0)
        super().__init__(w1, b1, w2, b2)
