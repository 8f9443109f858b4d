# The two commands of the README:
#   make run    set up .venv and run the main job
#   make test   set up .venv and run the test suite
# VENV can point elsewhere (.ci/run uses a fresh one): make test VENV=/tmp/venv
VENV ?= .venv
PYTHON ?= python3
TORCH_PIN = torch==2.13.0
EXTRAS = agents,human,baselines,recurrent,ray,video,test
BIN = $(VENV)/bin

.PHONY: install run test bench assets clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --upgrade pip
	# CPU build of torch first, pinned, so no other package pulls a CUDA build.
	$(BIN)/python -m pip install "$(TORCH_PIN)"
	$(BIN)/python -m pip install -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python -m agents.ald

test: install
	SDL_VIDEODRIVER=dummy $(BIN)/python -m pytest

bench: install
	$(BIN)/python -m memory_envs.bench

assets: install
	$(BIN)/python -m memory_envs.screenshots --out assets

clean:
	rm -rf $(VENV) build *.egg-info
