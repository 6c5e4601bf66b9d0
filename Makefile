# Kitchen order tracker: developer entry points.
#
#   make run    PostgreSQL + RabbitMQ in .stack/run, build, migrate, seed the
#               demo, start tracker (:8081), sync-worker (:8082), auth
#               (:8083, prints the demo staff logins) and devices (:8084); Ctrl-C
#               stops everything, data stays.      -> scripts/run.sh
#   make stop   stop what a `make run` left running.
#   make test   all workspace tests against a throwaway stack, the browser tests, the
#               short chaos test and the multi-replica test (scripts/chaos.sh replicas).
#               Extra runner arguments: make test TEST_ARGS='-E test(foo)'
#   make chaos  the long fault-injection test (scripts/chaos.sh long): 3,000 orders while
#               the tracker and the sync worker are killed and RabbitMQ and PostgreSQL restart.
#   make fmt    format the code;  make lint  fmt check + clippy.

# Databases created by `make run`; each service picks its own.
DATABASES := tracker legacy auth devices

TEST_ARGS ?=

SHELL := /bin/bash

.PHONY: run stop test chaos fmt lint

run:
	KITCHEN_DATABASES='$(DATABASES)' scripts/run.sh

stop:
	scripts/run.sh stop

test:
	scripts/test.sh $(TEST_ARGS)

chaos:
	scripts/chaos.sh long

fmt:
	cargo fmt --all

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# make bench    the load scenarios of docs/BENCHMARKS.md on a private stack in
#               .stack/bench; BENCH_DURATION=15s for a quick check, and
#               BENCH_SCENARIOS='a c' to run some of them.  -> scripts/bench.sh
BENCH_SCENARIOS ?=

.PHONY: bench
bench:
	scripts/bench.sh $(BENCH_SCENARIOS)
