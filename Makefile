# The two commands of the README: `make demo` and `make test`. Both set up what they need.
SHELL := /bin/bash
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test venv debian-deps kenlm clean-venv bench

$(STAMP): setup.py tools/setup_venv.sh
	bash tools/setup_venv.sh $(VENV)
	touch $@

venv: $(STAMP)

debian-deps:
	bash tools/install_debian_deps.sh

# KenLM's lmplz/build_binary for the n-gram LM stage and its tests (minutes, once).
kenlm: $(STAMP)
	bash tools/install_kenlm.sh $(PY)

# Without root the Debian packages cannot be installed: the tests that need them skip and say so.
# REQUIRE_TOOLS=1 (what .ci/run passes) makes a failed install stop `make test` instead, so those
# tests cannot quietly skip. -rsx lists every skip and expected failure with its reason.
REQUIRE_TOOLS ?= 0
test: $(STAMP)
	@bash tools/install_debian_deps.sh || { if [ "$(REQUIRE_TOOLS)" = 1 ]; then \
		echo "REQUIRE_TOOLS=1: the Debian packages could not be installed (see above)" >&2; exit 1; fi; \
		echo "Debian packages missing: the asterisk/espeak tests will be skipped (see above)"; }
	@bash tools/install_kenlm.sh $(PY) || { if [ "$(REQUIRE_TOOLS)" = 1 ]; then \
		echo "REQUIRE_TOOLS=1: KenLM could not be built (see above)" >&2; exit 1; fi; \
		echo "KenLM not built: the n-gram tests will be skipped (see above)"; }
	$(PY) -m pytest -q -rsx $(PYTEST_ARGS)

demo: debian-deps $(STAMP)
	@bash tools/install_kenlm.sh $(PY) || echo "KenLM not built: the demo decodes without the n-gram LM (see above)"
	cd egs/asterisk/ssl1 && PATH=$(abspath $(VENV))/bin:$$PATH ./run.sh
	@echo "Demo finished. Results: egs/asterisk/ssl1/RESULTS.md, data reports: egs/asterisk/ssl1/data/*/report.txt, logs: egs/asterisk/ssl1/exp/"

# Speed tables of docs/benchmarks.md (minutes on a small CPU; see each script's --help for sizes).
bench: $(STAMP)
	for b in encoder masking data kmeans decode; do $(PY) bench/$$b.py || exit 1; done

clean-venv:
	rm -rf $(VENV)
