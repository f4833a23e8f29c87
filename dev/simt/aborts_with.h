// dev/simt/aborts_with.h: for the emulator's tests of its own diagnostics (CPU build only): runs a
// function in a forked child with its stderr captured and says whether the child aborted (SIGABRT,
// as the layer's diagnostics end) with a message holding every expected piece of text.
#pragma once
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

// Runs fn in a forked child with stderr captured into *message; true if it aborted and its message
// holds every needle.
inline bool aborts_with(void (*fn)(), std::initializer_list<std::string> needles, std::string* message) {
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); exit(1); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        fflush(stderr);
        _exit(0);
    }
    close(fds[1]);
    char buf[4096];
    ssize_t got;
    while ((got = read(fds[0], buf, sizeof buf)) > 0) message->append(buf, (size_t)got);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    bool ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    for (const std::string& s : needles) ok = ok && message->find(s) != std::string::npos;
    return ok;
}
