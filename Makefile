# The README's two commands. Both do the whole set-up first (scripts/setup.sh): virtual environment,
# a Docker engine (started as root on Debian when none answers), the offline demo images.
.PHONY: demo demo-rolling test env clean lab realworld
demo:  ## bring the demo stack up and run the whole runbook against it
	bash scripts/setup.sh demo
demo-rolling:  ## the same, phase 1 with redeploy.strategy rolling: nothing taken down (docs/redeploy.md compares both)
	bash scripts/setup.sh demo --strategy rolling
test:  ## run the test suite (what .ci/run calls)
	bash scripts/setup.sh test
realworld: ## build the real-world applications' images offline and run every phase on each (docs/realworld.md)
	bash scripts/setup.sh realworld
env:   ## set-up only
	bash scripts/setup.sh env
clean: ## stop the demo stack (volumes kept)
	.venv/bin/runbook demo down
lab:   ## install the `lab` extra (JupyterLab), then open it on outputs/lab/, your copies of the notebooks (explore.ipynb is the interactive explorer)
	bash scripts/setup.sh lab
