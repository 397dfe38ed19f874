# ner-elmo: `make demo` installs and runs the main job on the bundled fixtures;
# `make test` installs and runs the whole test suite (what .ci/run calls).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION ?= 0.13.9
# Optional local wheel directories searched before PyPI (the torch/CUDA wheels are ~3 GB).
WHEELHOUSE ?= $(wildcard /opt/pypi-more/files /opt/wheels)
FIND_LINKS := $(foreach dir,$(WHEELHOUSE),--find-links $(dir))
PYTEST_ARGS ?=
RUN ?= runs/demo

# The demo trains the full conll2003_elmo.jsonnet architecture on the tiny fixtures, with the
# project's own tiny random ELMo and GloVe files standing in for the downloads.
DEMO_ENV := NER_ELMO_CONLL_TRAIN=fixtures/conll/train.iob1.txt \
	NER_ELMO_CONLL_DEV=fixtures/conll/dev.iob1.txt \
	NER_ELMO_CONLL_TEST=fixtures/conll/dev.iob1.txt \
	NER_ELMO_ELMO_OPTIONS=fixtures/elmo/options.json \
	NER_ELMO_ELMO_WEIGHTS=fixtures/elmo/lm_weights.hdf5 \
	NER_ELMO_ELMO_DIM=32 \
	NER_ELMO_GLOVE=fixtures/glove/tiny.50d.txt

.PHONY: install java chromium demo test test-fast test-cpu-kinds gpu-check lock audit clean

install: $(VENV)/.installed java chromium

# Spark (the spark extra, part of dev) needs Java 17 or newer. As root with apt-get (CI, a
# container), Debian's openjdk-17-jre-headless is installed when there is no java; otherwise the
# Spark tests skip, saying so.
java:
	@if command -v java >/dev/null 2>&1 || { [ -n "$$JAVA_HOME" ] && [ -x "$$JAVA_HOME/bin/java" ]; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		mkdir -p /usr/share/man/man1; \
		timeout 600 sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
			apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null' \
			|| echo "openjdk-17-jre-headless could not be installed: the Spark tests will be skipped"; \
	else echo "no Java 17+: the Spark tests will be skipped (apt-get install openjdk-17-jre-headless)"; fi

# The service page's browser test and the entity page's screenshot test drive Debian's chromium
# (Playwright, in the dev extra, downloads no browser). As root with apt-get (CI, a container) it
# is installed when missing; otherwise those tests skip, saying so.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		timeout 600 sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
			apt-get install -y -qq chromium >/dev/null' \
			|| echo "chromium could not be installed: the browser tests will be skipped"; \
	else echo "no chromium: the browser tests will be skipped (apt-get install chromium)"; fi

# The lock is resolved with requirements/overrides.txt (allennlp 2.10.1 pins torch<1.13, which
# has no Python 3.11 wheels); installing it with --no-deps reproduces that resolution exactly.
$(VENV)/.installed: requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(BIN)/uv pip install --python $(BIN)/python --no-deps $(FIND_LINKS) -r requirements/lock.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --override requirements/overrides.txt \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements/lock.txt

# `make audit`: pip-audit checks every pin in requirements/lock.txt against the published
# advisories (AUDIT_SERVICE=pypi, PyPI's JSON API, the default; or osv, api.osv.dev). pip-audit
# runs from its own tool venv (AUDIT_VENV), never from $(VENV), and is not in the lock. Exit 0: no
# known advisory; 1: advisories found (listed); 2: the advisory service could not be reached, or
# answered for only some packages, so the lock was not (fully) audited; 3: pip-audit failed
# otherwise. pip-audit alone says "No known vulnerabilities found" and exits 0 even when the
# service answered for none of the packages; this target does not. AUDIT_ARGS is passed on
# (e.g. --ignore-vuln ID).
PIP_AUDIT_VERSION ?= 2.10.1
AUDIT_VENV ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ner-elmo/pip-audit-$(PIP_AUDIT_VERSION)
AUDIT_SERVICE ?= pypi
AUDIT_ARGS ?=


$(AUDIT_VENV)/.installed:
	@test -x $(AUDIT_VENV)/bin/python || $(PYTHON) -m venv $(AUDIT_VENV)
	@$(AUDIT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		"pip-audit==$(PIP_AUDIT_VERSION)" 2>/dev/null \
		|| { echo "make audit: could not install pip-audit==$(PIP_AUDIT_VERSION) into $(AUDIT_VENV) (no package index?)"; exit 3; }
	@touch $@

audit: $(AUDIT_VENV)/.installed
	@tmp=$$(mktemp -d); \
	$(AUDIT_VENV)/bin/pip-audit -r requirements/lock.txt --no-deps --disable-pip \
		-s $(AUDIT_SERVICE) -f json -o $$tmp/report.json --progress-spinner off --timeout 30 \
		$(AUDIT_ARGS) 2>$$tmp/stderr; \
	$(AUDIT_VENV)/bin/python requirements/audit_summary.py $$tmp/report.json $$tmp/stderr $(AUDIT_SERVICE); \
	rc=$$?; rm -rf $$tmp; exit $$rc

demo: install
	$(DEMO_ENV) $(BIN)/allennlp train training_config/conll2003_elmo.jsonnet -s $(RUN) -f \
		-o '{"trainer.num_epochs": 40, "trainer.patience": null, "data_loader.batch_sampler.batch_size": 8}'
	$(DEMO_ENV) $(BIN)/allennlp evaluate $(RUN)/model.tar.gz fixtures/conll/dev.iob1.txt \
		--output-file $(RUN)/evaluation.json
	$(BIN)/allennlp predict $(RUN)/model.tar.gz fixtures/predict/input.jsonl --silent \
		--output-file $(RUN)/predictions.jsonl
	$(BIN)/python -m ner_elmo.show_entities $(RUN)/predictions.jsonl

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The numerical core and the embedder again with torch's, oneDNN's and MKL's CPU kernels forced
# down to AVX2 and to no vector kernels: what a user's older or AMD CPU runs. An equality that
# rests on one CPU's rounding fails here, not on the user's machine.
NUMERIC_TESTS ?= tests/test_fast_elmo.py tests/test_ner_elmo_embedder.py tests/test_elmo_cache.py \
	tests/test_viterbi.py tests/test_ner_crf_tagger.py tests/test_elmo_weights_io.py tests/test_rng_state.py \
	tests/test_fused_bilstm.py tests/test_distinct_character_encoding.py tests/test_word_dropout.py \
	tests/test_entity_confidence.py \
	tests/test_vocabulary_from_training_data.py
CPU_KIND_avx2 := ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
CPU_KIND_default := ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2
test-cpu-kinds: install
	$(CPU_KIND_avx2) $(BIN)/python -m pytest -q -m "not slow" -p no:cacheprovider $(NUMERIC_TESTS)
	$(CPU_KIND_default) $(BIN)/python -m pytest -q -m "not slow" -p no:cacheprovider $(NUMERIC_TESTS)

# The GPU code paths against the CPU reference, on a machine with CUDA, torch, numpy and h5py
# (no allennlp needed, nor the package installed: the checkout is put on the path): see
# benchmarks/gpu_check.py.
gpu-check:
	PYTHONPATH=$(CURDIR) python3 benchmarks/gpu_check.py

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
