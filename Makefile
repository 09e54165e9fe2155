# make demo: create .venv, install fnd, run the chapter's matmul ladder.
# make test: create or reuse .venv, run the test suite (the developer's loop, about a minute).
# make slow: the checks that take longer (docs/design.md, "The two tiers of tests"); CI runs both.
# The CPU wheel of torch is the default; override with e.g. make TORCH='torch==2.14.1'.
PYTHON ?= python3.11
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fnd-installed

# Wheels for the GPU machine (Python 3.12, no network there): scripts/gpu-check installs them.
GPU_WHEELS := pyperf==2.11.0 typer==0.29.2 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
	typing-inspection==0.4.5 annotated-doc==0.0.7 shellingham==1.5.4 sqlalchemy==2.1.9

.PHONY: demo test slow lint docs regen clean gpu-wheels

$(STAMP): pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; run make PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fnd matmul-bench --config configs/book.toml

# The suite on 2 workers, one torch and numba thread each (2 cores, not oversubscribed); numba-tiled's
# float32 and float64 tests each on one worker (xdist_group: each dtype compiles once), and the timed tests
# (xdist_group "timed") one after the other: each holds on a busy host, as it must in CI, so the other
# worker beside them is no harm (a phase of their own cost 13 s, most of it collecting again).
# Python's own bytecode cache on, whatever the environment says (a sandbox may set PYTHONDONTWRITEBYTECODE):
# without it every worker process compiles fnd and pytest rewrites every test module again, each run.
test: export PYTHONDONTWRITEBYTECODE :=
test: lint
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

# make slow: the `slow` tests (many seeds, simulated error rates, whole-command runs that a cheaper test in
# make test covers), on 2 workers; .ci/run runs them after make test.
slow: export PYTHONDONTWRITEBYTECODE :=
slow: $(STAMP)
	OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup -m slow \
		$$(grep -l "mark.slow" tests/test_*.py)

# make lint: ruff's lint and format checks (configured in pyproject.toml); make test runs it first.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# make regen: rewrite the generated kernels (.gitattributes marks them) from their *_source.py.
regen: $(STAMP)
	$(BIN)/python -m fndcli.kernels.gemm_source > fndcli/kernels/gemm.py.new && mv fndcli/kernels/gemm.py.new fndcli/kernels/gemm.py
	$(BIN)/python -m fndcli.kernels.peak_source > fndcli/kernels/peak.py.new && mv fndcli/kernels/peak.py.new fndcli/kernels/peak.py

# make docs: rewrite docs/cli.md, the option reference, from fnd's --help (tests/test_docs.py checks it).
docs: $(STAMP)
	$(BIN)/python -m fndcli.cli.reference docs/cli.md

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

gpu-wheels: $(STAMP)
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl $(GPU_WHEELS)
