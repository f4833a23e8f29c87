// Tiny test helpers shared by every test program in the project.
// A test prints "PASS name" / "FAIL name: why" / "SKIP name: why", one line per check;
// dev/run_tests.sh totals them. test_exit() runs the last checks a helper registered (e.g.
// dev/simt/kernel_test.h: thread orders, leaks), flushes, and returns the process exit status
// (1 on failure).
#pragma once
#include <cstdarg>
#include <cstdio>

static int g_test_failures = 0;

static inline void test_report(bool ok, const char* name, const char* fmt = nullptr, ...) {
    if (ok) { printf("PASS %s\n", name); fflush(stdout); return; }
    g_test_failures++;
    printf("FAIL %s", name);
    if (fmt) {
        printf(": ");
        va_list ap; va_start(ap, fmt); vprintf(fmt, ap); va_end(ap);
    }
    printf("\n");
    fflush(stdout);
}

static inline void test_skip(const char* name, const char* why) {
    printf("SKIP %s: %s\n", name, why);
    fflush(stdout);
}

// Checks a test helper adds to every program that uses it, run by test_exit (once).
static void (*g_test_exit_checks)() = nullptr;

static inline int test_exit() {
    if (void (*checks)() = g_test_exit_checks) {
        g_test_exit_checks = nullptr;
        checks();
    }
    fflush(stdout);
    fflush(stderr);
    return g_test_failures ? 1 : 0;
}
