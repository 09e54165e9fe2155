"""The chapter's model with hand-written backward passes, pasted unmodified (fastbook ch. 17, "Refactor the model").

    fnd gradcheck --model examples/chapter_model.py:Model     # every .g against autograd, and finite differences
    fnd gradcheck --layer examples/chapter_model.py:Lin       # one layer
    fnd train --model examples/chapter_model.py:Model         # trained by fnd's SGD beside its autograd twin

The protocol fnd follows is the chapter's: Model(w1, b1, w2, b2); loss = model(x, targ);
model.backward() stores gradients in .g. Weights are (n_in, n_out). The chapter's Mse is right
for one output (the default, --n-out 1); with more, its backward's unsqueeze(-1) adds a
dimension and the model's backward raises, which fnd reports.
"""


class Relu():
    def __call__(self, inp):
        self.inp = inp
        self.out = inp.clamp_min(0.)
        return self.out

    def backward(self): self.inp.g = (self.inp>0).float() * self.out.g


class Lin():
    def __init__(self, w, b): self.w,self.b = w,b

    def __call__(self, inp):
        self.inp = inp
        self.out = inp@self.w + self.b
        return self.out

    def backward(self):
        self.inp.g = self.out.g @ self.w.t()
        self.w.g = self.inp.t() @ self.out.g
        self.b.g = self.out.g.sum(0)


class Mse():
    def __call__(self, inp, targ):
        self.inp = inp
        self.targ = targ
        self.out = (inp.squeeze() - targ).pow(2).mean()
        return self.out

    def backward(self):
        x = (self.inp.squeeze()-self.targ).unsqueeze(-1)
        self.inp.g = 2.*x/self.targ.shape[0]


class Model():
    def __init__(self, w1, b1, w2, b2):
        self.layers = [Lin(w1,b1), Relu(), Lin(w2,b2)]
        self.loss = Mse()

    def __call__(self, x, targ):
        for l in self.layers: x = l(x)
        return self.loss(x, targ)

    def backward(self):
        self.loss.backward()
        for l in reversed(self.layers): l.backward()
