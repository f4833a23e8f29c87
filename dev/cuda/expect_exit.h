// dev/cuda/expect_exit.h: checks that a piece of host code rejects bad input as the project
// requires: it exits with status 1 and its stderr says what is wrong. The code runs in a forked
// child (so the test goes on); one PASS/FAIL line via test_report.
#pragma once
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "dev/test_util.h"

// Runs f() in a child; passes if the child exits with status 1 and its stderr contains `expect`.
template <class F> void expect_exit_message(const char* name, const char* expect, F f) {
    int fds[2];
    if (pipe(fds) != 0) { test_report(false, name, "pipe() failed"); return; }
    fflush(stdout);
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        f();
        _exit(0);
    }
    close(fds[1]);
    std::string message;
    char buf[512];
    for (ssize_t got; (got = read(fds[0], buf, sizeof buf)) > 0;) message.append(buf, (size_t)got);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    const bool exited_1 = WIFEXITED(status) && WEXITSTATUS(status) == 1;
    test_report(exited_1 && message.find(expect) != std::string::npos, name,
                "wait status %d, stderr \"%s\" (expected exit status 1 and \"%s\")", status,
                message.c_str(), expect);
}
