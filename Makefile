# Herald: `make run` starts Herald with the example workflows; `make test` runs every test.
# Both install what is missing (scripts/install-deps), configure and build first.

BUILD_DIR ?= build/release
ASAN_BUILD_DIR ?= build/asan
JOBS ?= 2
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
DATA_DIR ?= .herald
# ccache: paths relative to the checkout, so another clone of the same code reuses the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build build-asan run test test-release test-asan bench install format clean

all: build

deps:
	@scripts/install-deps

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(ASAN_BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD_DIR) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DHERALD_SANITIZE=ON -DHERALD_BUILD_BENCH=OFF

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

build-asan: deps $(ASAN_BUILD_DIR)/CMakeCache.txt
	cmake --build $(ASAN_BUILD_DIR) -j$(JOBS)

run: build
	@scripts/run-demo $(BUILD_DIR)/herald $(DATA_DIR)

# Every test, on the optimised build and then on the ASan+UBSan build.
test: test-release test-asan

test-release: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j$(JOBS) --timeout 300

test-asan: build-asan
	cd $(ASAN_BUILD_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 600

bench: build
	@scripts/run-benchmarks $(BUILD_DIR)

# herald, its plugins and the plugin SDK under $(PREFIX) (docs/plugin-guide.md, "Outside this
# repository"); e.g. make install PREFIX=~/.local
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

format:
	git ls-files '*.cc' '*.h' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
