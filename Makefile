# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The torch pair pinned here is the one this project is tested with (CUDA build; runs on CPU too).
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/nclab train --preset demo

# pytest-xdist: one worker per CPU; tests that share a module fixture and its server run on one (xdist_group).
XDIST  ?= -n $(shell nproc 2>/dev/null || echo 2) --dist loadgroup

test: $(VENV)/.installed
	$(PY) -m pytest $(XDIST)

# The edit-test loop: everything but the tests marked slow.
test-fast: $(VENV)/.installed
	$(PY) -m pytest $(XDIST) -m "not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(VENV)/.installed
	$(PY) benchmarks/metrics_speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache
