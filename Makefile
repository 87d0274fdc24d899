# Entry points: `make demo` and `make test` (each does the set-up it needs).
.PHONY: setup demo test bench clean

setup:
	./scripts/setup.sh

demo: setup
	./scripts/demo.sh

test: setup
	./scripts/test.sh

bench:
	./bench/run.sh

clean:
	cargo clean
