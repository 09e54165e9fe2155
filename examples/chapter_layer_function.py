"""The chapter's LayerFunction version of the layers (fastbook ch. 17, "Going to PyTorch"), with its one bug
fixed.

    fnd gradcheck --layer examples/chapter_layer_function.py:Lin
    fnd gradcheck --layer examples/chapter_layer_function.py:Mse

The chapter's Lin.bwd reads `self.inp` and `self.out`, which this class never sets (the
base class stores `self.args` and `self.out`): pasted unmodified, `fnd gradcheck --layer`
reports "Lin.backward() raised AttributeError: 'Lin' object has no attribute 'inp'" with the
line it came from. Here it reads its arguments, `inp` and `out`.
"""


class LayerFunction:
    def __call__(self, *args):
        self.args = args
        self.out = self.forward(*args)
        return self.out

    def forward(self):
        raise Exception("not implemented")

    def bwd(self):
        raise Exception("not implemented")

    def backward(self):
        self.bwd(self.out, *self.args)


class Relu(LayerFunction):
    def forward(self, inp):
        return inp.clamp_min(0.0)

    def bwd(self, out, inp):
        inp.g = (inp > 0).float() * out.g


class Lin(LayerFunction):
    def __init__(self, w, b):
        self.w, self.b = w, b

    def forward(self, inp):
        return inp @ self.w + self.b

    def bwd(self, out, inp):
        inp.g = out.g @ self.w.t()
        self.w.g = inp.t() @ out.g  # the chapter: self.inp.t() @ self.out.g
        self.b.g = out.g.sum(0)


class Mse(LayerFunction):
    def forward(self, inp, targ):
        return (inp.squeeze() - targ).pow(2).mean()

    def bwd(self, out, inp, targ):
        inp.g = 2 * (inp.squeeze() - targ).unsqueeze(-1) / targ.shape[0]
