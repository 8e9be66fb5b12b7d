# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# INPUT=path/to/thermal.mp4 to colourise your own clip; otherwise a synthetic one is made.
demo: $(STAMP)
	$(PY) -m ir2vis_stream.demo $(if $(INPUT),--input "$(INPUT)")

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/pipeline_efficiency.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache
